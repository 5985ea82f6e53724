"""A running batch's journal (one row per line answered, so a resumed run skips them), its counts, and the
output and error files written from it when the batch ends."""

from __future__ import annotations

import json
import tempfile
import uuid
from typing import Any

from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.batches.endpoints import LineAnswer
from apps.batches.input_files import LineError
from apps.batches.models import Batch, BatchRequest, new_batch_request_id
from apps.batches.runner import LineOutcome
from apps.finetune.models import TrainingFile
from apps.usage.services import usage_record

Status = Batch.Status
OUTPUT_PURPOSE = "batch_output"


def record_outcome(batch: Batch, outcome: LineOutcome) -> None:
    line, answer = outcome.line, outcome.answer
    response_body = answer.body if answer is not None else outcome.error_body
    record = {
        "id": new_batch_request_id(),
        "custom_id": line.custom_id,
        "response": {
            "status_code": outcome.status_code,
            "request_id": f"req_{uuid.uuid4().hex}",
            "body": response_body,
        },
        "error": None,
    }
    if _journal(batch, line=line.number, custom_id=line.custom_id, record=record, answer=answer) and answer:
        usage_record(
            owner_id=batch.owner_id,
            api_key_id=batch.api_key_id,
            route=line.url,
            model=answer.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            latency_ms=outcome.latency_ms,
            status_code=200,
        )


def record_error(batch: Batch, error: LineError) -> None:
    record = {
        "id": new_batch_request_id(),
        "custom_id": error.custom_id,
        "response": None,
        "error": {"code": error.code, "message": error.message, "line": error.number},
    }
    _journal(batch, line=error.number, custom_id=error.custom_id or "", record=record, answer=None)


def _journal(batch: Batch, *, line: int, custom_id: str, record: dict[str, Any], answer: LineAnswer | None) -> bool:
    """Journal one finished line and count it; False when it was journaled already."""
    succeeded = answer is not None
    # Each transaction here starts by writing: SQLite cannot turn a read transaction into a write one once
    # another connection (a request reading the batch, a cancel) has written.
    try:
        with transaction.atomic():
            BatchRequest.objects.create(
                batch_id=batch.id, line=line, custom_id=custom_id, succeeded=succeeded, record=record
            )
            _count(batch, answer)
    except IntegrityError:
        return False
    return True


def _count(batch: Batch, answer: LineAnswer | None) -> None:
    if answer is None:
        Batch.objects.filter(pk=batch.id).update(request_failed=F("request_failed") + 1)
    else:
        Batch.objects.filter(pk=batch.id).update(
            request_completed=F("request_completed") + 1,
            prompt_tokens=F("prompt_tokens") + answer.prompt_tokens,
            completion_tokens=F("completion_tokens") + answer.completion_tokens,
        )
        Batch.objects.filter(pk=batch.id, model="").update(model=answer.model)


def recount(batch_id: str) -> None:
    """Counts from the journal: after a crash, what was counted but not journaled (or the reverse) is fixed."""
    journal = BatchRequest.objects.filter(batch_id=batch_id)
    Batch.objects.filter(pk=batch_id).update(
        request_completed=journal.filter(succeeded=True).count(), request_failed=journal.filter(succeeded=False).count()
    )


def _result_file(batch: Batch, *, succeeded: bool) -> str:
    """Write the journaled lines of one kind, in input order, as a ``batch_output`` file; its id, or "" if none."""
    records = BatchRequest.objects.filter(batch_id=batch.id, succeeded=succeeded).order_by("line")
    count = records.count()
    if not count:
        return ""
    kind = "output" if succeeded else "error"
    with tempfile.TemporaryFile() as handle:
        for record in records.values_list("record", flat=True).iterator(chunk_size=1000):
            handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        size = handle.tell()
        handle.seek(0)
        result = TrainingFile(
            owner_id=batch.owner_id,
            filename=f"{batch.id}_{kind}.jsonl",
            bytes=size,
            purpose=OUTPUT_PURPOSE,
            format="batch",
            total=count,
            valid_count=count,
            validation={"batch_id": batch.id, "kind": kind},
        )
        result.file.save(result.filename, File(handle), save=False)
        result.save()
    return result.id


def finalize(batch_id: str, *, expired: bool) -> None:
    """in_progress → finalizing → completed | expired, or cancelling → cancelled: the files, then the journal
    goes (its rows are the files now)."""
    now = timezone.now()
    Batch.objects.filter(pk=batch_id, status=Status.IN_PROGRESS).update(status=Status.FINALIZING, finalizing_at=now)
    with transaction.atomic():
        # Writing first takes the lock (a select_for_update on PostgreSQL, the write lock on SQLite).
        if not Batch.objects.filter(pk=batch_id, status__in=(Status.FINALIZING, Status.CANCELLING)).update(
            heartbeat_at=now
        ):
            return
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        batch.output_file_id = _result_file(batch, succeeded=True)
        batch.error_file_id = _result_file(batch, succeeded=False)
        journal = BatchRequest.objects.filter(batch_id=batch_id)
        batch.request_completed = journal.filter(succeeded=True).count()
        batch.request_failed = journal.filter(succeeded=False).count()
        now = timezone.now()
        if batch.status == Status.CANCELLING:
            batch.status, batch.cancelled_at = Status.CANCELLED, now
        elif expired:
            batch.status, batch.expired_at = Status.EXPIRED, now
        else:
            batch.status, batch.completed_at = Status.COMPLETED, now
        batch.save()
        journal.delete()
