"""The Batch API's writes: input files checked on upload, batches created, cancelled, run (claimed, lines run
and journaled, output and error files written) and resumed when their worker died."""

from __future__ import annotations

import itertools
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.cache import cache
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import ApiKey
from apps.batches.endpoints import LineAnswer, batch_endpoints, batch_line_runner
from apps.batches.input_files import (
    BatchFileError,
    BatchLine,
    LineError,
    parse_line,
    read_lines,
    summarize_input_file,
)
from apps.batches.models import Batch, BatchRequest, new_batch_request_id
from apps.batches.runner import LineOutcome, OverloadRetry, run_lines
from apps.batches.selectors import batch_input_file_get, stale_batches
from apps.core.dispatch import enqueue
from apps.finetune.models import TrainingFile
from apps.usage.services import usage_record
from workers.errors import Conflict, InvalidRequest, PayloadTooLarge

logger = logging.getLogger(__name__)
Status = Batch.Status
INPUT_PURPOSE = "batch"
OUTPUT_PURPOSE = "batch_output"
COMPLETION_WINDOW = timedelta(hours=24)
# How often a running batch proves it is alive and looks for a cancel or its expiry.
POLL_S = 1.0


# --- Input files ----------------------------------------------------------------------------------------


def batch_input_file_create(*, owner: AbstractUser, upload: UploadedFile) -> TrainingFile:
    """Store a batch input file unless the whole file is unusable; bad lines are counted (with examples) and
    become error-file lines when a batch runs it."""
    if upload.size > settings.BATCH_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"The file is larger than {settings.BATCH_MAX_UPLOAD_BYTES} bytes.",
            code="file_too_large",
            param="file",
        )
    upload.seek(0)
    try:
        summary = summarize_input_file(
            lines=read_lines(upload, max_lines=settings.BATCH_MAX_LINES), urls=batch_endpoints()
        )
    except BatchFileError as exc:
        raise InvalidRequest(exc.message, code=exc.code, param="file") from None
    upload.seek(0)
    with transaction.atomic():
        input_file = TrainingFile(
            owner=owner,
            filename=Path(upload.name or "batch.jsonl").name[:255],
            bytes=upload.size,
            purpose=INPUT_PURPOSE,
            format="batch",
            total=summary.total,
            valid_count=summary.valid,
            validation=summary.to_dict(),
        )
        input_file.file.save(input_file.filename, upload, save=False)
        try:
            input_file.save()
        except Exception:
            input_file.file.delete(save=False)
            raise
    return input_file


# --- Create and cancel ----------------------------------------------------------------------------------


def batch_create(
    *,
    owner: AbstractUser,
    api_key: ApiKey | None,
    input_file_id: str,
    endpoint: str,
    completion_window: str = "24h",
    metadata: dict[str, str] | None = None,
) -> Batch:
    input_file = batch_input_file_get(owner=owner, file_id=input_file_id)
    if input_file.purpose != INPUT_PURPOSE:
        raise InvalidRequest(
            f"The file {input_file.id} has purpose {input_file.purpose!r}; a batch needs a file "
            f"uploaded with purpose {INPUT_PURPOSE!r}.",
            code="invalid_input_file",
            param="input_file_id",
        )
    duplicates = input_file.validation.get("duplicate_custom_ids") or []
    if duplicates:
        raise InvalidRequest(
            f"custom_id must be unique within a batch file; repeated: {', '.join(duplicates[:5])}.",
            code="duplicate_custom_id",
            param="input_file_id",
        )
    now = timezone.now()
    with transaction.atomic():
        batch = Batch.objects.create(
            owner=owner,
            api_key=api_key,
            endpoint=endpoint,
            input_file_id=input_file.id,
            completion_window=completion_window,
            metadata=metadata,
            created_at=now,
            expires_at=now + COMPLETION_WINDOW,
            request_total=input_file.total,
        )
        enqueue(_run_task(), batch.id)
    return batch


def batch_cancel(*, batch: Batch) -> Batch:
    """validating/in_progress → cancelling (the runner finishes the lines in flight, then ``cancelled`` with the
    files of what ran); a batch no runner has picked up yet is cancelled at once. Cancelling again returns the
    batch unchanged; a finalizing or finished batch is a 409."""
    now = timezone.now()
    # Conditional updates, not read-then-write: the runner claims and moves the batch with the same guards.
    unclaimed = Batch.objects.filter(pk=batch.pk, status=Status.VALIDATING, heartbeat_at__isnull=True)
    running = Batch.objects.filter(pk=batch.pk, status__in=(Status.VALIDATING, Status.IN_PROGRESS))
    changed = unclaimed.update(status=Status.CANCELLED, cancelling_at=now, cancelled_at=now) or running.update(
        status=Status.CANCELLING, cancelling_at=now
    )
    batch.refresh_from_db()
    if not changed and batch.status != Status.CANCELLING:
        raise Conflict(f"The batch is {batch.status}; it can no longer be cancelled.", code="batch_not_cancellable")
    return batch


def _run_task() -> Any:
    from apps.batches.tasks import batch_run_task

    return batch_run_task


# --- Run ------------------------------------------------------------------------------------------------


def batch_run(*, batch_id: str) -> None:
    """Claim the batch, run its lines (skipping the ones a previous run journaled), write its files."""
    batch = _claim(batch_id)
    if batch is None:
        return
    try:
        _run_claimed(batch)
    except Exception as exc:
        logger.exception("batch %s failed", batch_id)
        _fail(batch_id, code="internal_error", message=f"The batch runner failed: {type(exc).__name__}: {exc}")


def _run_claimed(batch: Batch) -> None:
    input_file = TrainingFile.objects.filter(
        pk=batch.input_file_id, owner_id=batch.owner_id, purpose=INPUT_PURPOSE
    ).first()
    if batch.status == Status.VALIDATING:
        if input_file is None:
            _fail(
                batch.id,
                code="invalid_input_file",
                message="The input file was deleted before the batch ran.",
                param="input_file_id",
            )
            return
        Batch.objects.filter(pk=batch.id, status=Status.VALIDATING).update(
            status=Status.IN_PROGRESS, in_progress_at=timezone.now(), request_total=input_file.total
        )
        batch.refresh_from_db()
    expired = timezone.now() >= batch.expires_at
    if batch.status == Status.IN_PROGRESS:
        if input_file is None:
            _fail(
                batch.id,
                code="invalid_input_file",
                message="The input file was deleted while the batch ran.",
                param="input_file_id",
            )
            return
        reason = _run_lines(batch, input_file)
        if reason == "lost":
            return
        expired = reason == "expired"
    _finalize(batch.id, expired=expired)


def _claim(batch_id: str) -> Batch | None:
    """A batch nobody has picked up, or one whose runner stopped beating (it died), becomes this run's."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.BATCH_STALE_AFTER_S)
    claimable = Q(status=Status.VALIDATING, heartbeat_at__isnull=True) | Q(
        status__in=Batch.ACTIVE, heartbeat_at__lt=cutoff
    )
    claimed = Batch.objects.filter(claimable, pk=batch_id).update(heartbeat_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    batch = Batch.objects.select_related("owner").get(pk=batch_id)
    if batch.attempts > settings.BATCH_MAX_ATTEMPTS:
        _fail(
            batch_id,
            code="worker_lost",
            message=f"The batch's worker stopped {batch.attempts - 1} times; it was given up.",
        )
        return None
    return batch


def _input_items(batch: Batch, input_file: TrainingFile, *, skip: set[int]) -> Iterator[BatchLine | LineError]:
    with input_file.file.open("rb") as stream:
        for number, text in read_lines(stream):
            if number in skip:
                continue
            parsed = parse_line(number=number, text=text, urls=batch_endpoints())
            if isinstance(parsed, BatchLine) and parsed.url != batch.endpoint:
                parsed = LineError(
                    number,
                    parsed.custom_id,
                    "mismatched_endpoint",
                    f"Line {number}: url {parsed.url!r} is not this batch's endpoint {batch.endpoint!r}.",
                )
            yield parsed


def _run_lines(batch: Batch, input_file: TrainingFile) -> str | None:
    """Run every line not journaled yet; returns why it stopped early (cancelled, expired, lost) or None."""
    done = set(BatchRequest.objects.filter(batch_id=batch.id).values_list("line", flat=True))
    _recount(batch.id)
    runner = batch_line_runner(batch.endpoint)
    user = batch.owner  # loaded here, once, not lazily by every pool thread
    items = _input_items(batch, input_file, skip=done)
    not_run: list[BatchLine] = []
    polled_at = 0.0

    def run(line: BatchLine) -> LineAnswer:
        return runner(user=user, body=line.body)

    def stop_reason() -> str | None:
        nonlocal polled_at
        if time.monotonic() - polled_at < POLL_S:
            return None
        polled_at = time.monotonic()
        now = timezone.now()
        if Batch.objects.filter(pk=batch.id, status=Status.IN_PROGRESS).update(heartbeat_at=now):
            return "expired" if now >= batch.expires_at else None
        status = Batch.objects.filter(pk=batch.id).values_list("status", flat=True).first()
        return "cancelled" if status == Status.CANCELLING else "lost"

    try:
        reason = run_lines(
            items=items,
            concurrency=settings.BATCH_CONCURRENCY,
            run=run,
            on_outcome=lambda outcome: _record_outcome(batch, outcome),
            on_line_error=lambda error: _record_error(batch, error),
            on_not_run=not_run.append,
            stop_reason=stop_reason,
            retry=OverloadRetry(max_wait_s=settings.BATCH_OVERLOAD_MAX_WAIT_S),
        )
        if reason == "expired":  # like OpenAI: every request that did not run is in the error file
            for item in itertools.chain(not_run, items):
                if isinstance(item, BatchLine):
                    item = LineError(
                        item.number,
                        item.custom_id,
                        "batch_expired",
                        f"Line {item.number}: the batch expired before this request ran.",
                    )
                _record_error(batch, item)
    finally:
        items.close()
    return reason


def _record_outcome(batch: Batch, outcome: LineOutcome) -> None:
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


def _record_error(batch: Batch, error: LineError) -> None:
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


def _recount(batch_id: str) -> None:
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


def _finalize(batch_id: str, *, expired: bool) -> None:
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


def _fail(batch_id: str, *, code: str, message: str, param: str | None = None) -> None:
    errors = {"object": "list", "data": [{"code": code, "message": message, "param": param, "line": None}]}
    with transaction.atomic():
        Batch.objects.filter(pk=batch_id).exclude(status__in=Batch.TERMINAL).update(
            status=Status.FAILED, failed_at=timezone.now(), errors=errors
        )
        BatchRequest.objects.filter(batch_id=batch_id).delete()


# --- Stale batches --------------------------------------------------------------------------------------


def batch_resume_stale() -> int:
    """Send the run task again for batches whose runner died or never started; it resumes from the journal.
    A batch is sent at most once per ``BATCH_STALE_AFTER_S`` (the check also runs on every read)."""
    sent = 0
    for batch_id in stale_batches().values_list("pk", flat=True):
        if cache.add(f"batches:resume:{batch_id}", 1, timeout=settings.BATCH_STALE_AFTER_S):
            enqueue(_run_task(), batch_id)
            sent += 1
    return sent
