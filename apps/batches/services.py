"""The Batch API's writes: input files checked on upload, batches created, cancelled, run (claimed, lines run
and journaled, output and error files written) and resumed when their worker died."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import ApiKey
from apps.batches import journal
from apps.batches.endpoints import LineAnswer, batch_endpoints, batch_line_runner
from apps.batches.input_files import (
    BatchFileError,
    BatchLine,
    LineError,
    parse_line,
    read_lines,
    summarize_input_file,
)
from apps.batches.models import Batch, BatchRequest
from apps.batches.runner import OverloadRetry, run_lines
from apps.batches.selectors import batch_input_file_get, stale_batches
from apps.core.dispatch import enqueue
from apps.finetune.models import TrainingFile
from apps.finetune.services.training_files import training_file_store
from workers.errors import Conflict, InvalidRequest, PayloadTooLarge

logger = logging.getLogger(__name__)
Status = Batch.Status
INPUT_PURPOSE = "batch"
COMPLETION_WINDOW = timedelta(hours=24)
# How often a running batch proves it is alive and looks for a cancel or its expiry.
POLL_S = 1.0


# --- Input files ----------------------------------------------------------------------------------------


def batch_input_file_create(*, owner: User, upload: UploadedFile) -> TrainingFile:
    """Store a batch input file unless the whole file is unusable; bad lines are counted (with examples) and
    become error-file lines when a batch runs it."""
    if (upload.size or 0) > settings.BATCH_MAX_UPLOAD_BYTES:
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
    return training_file_store(
        owner=owner,
        upload=upload,
        purpose=INPUT_PURPOSE,
        format="batch",
        total=summary.total,
        valid_count=summary.valid,
        validation=summary.to_dict(),
        default_name="batch.jsonl",
    )


# --- Create and cancel ----------------------------------------------------------------------------------


def batch_create(
    *,
    owner: User,
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
            _fail_input_file_gone(batch.id, when="before")
            return
        Batch.objects.filter(pk=batch.id, status=Status.VALIDATING).update(
            status=Status.IN_PROGRESS, in_progress_at=timezone.now(), request_total=input_file.total
        )
        batch.refresh_from_db()
    expired = timezone.now() >= batch.expires_at
    if batch.status == Status.IN_PROGRESS:
        if input_file is None:
            _fail_input_file_gone(batch.id, when="while")
            return
        reason = _run_lines(batch, input_file)
        if reason == "lost":
            return
        expired = reason == "expired"
    journal.finalize(batch.id, expired=expired)


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


def _input_items(
    batch: Batch, input_file: TrainingFile, *, skip: set[int]
) -> Generator[BatchLine | LineError, None, None]:
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
    journal.recount(batch.id)
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
            on_outcome=lambda outcome: journal.record_outcome(batch, outcome),
            on_line_error=lambda error: journal.record_error(batch, error),
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
                journal.record_error(batch, item)
    finally:
        items.close()
    return reason


def _fail_input_file_gone(batch_id: str, *, when: str) -> None:
    _fail(
        batch_id,
        code="invalid_input_file",
        message=f"The input file was deleted {when} the batch ran.",
        param="input_file_id",
    )


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
    A batch is sent at most once per ``BATCH_STALE_AFTER_S``. Run periodically by
    ``batches.maintenance.resume_stale`` (CELERY_BEAT_SCHEDULE)."""
    sent = 0
    for batch_id in stale_batches().values_list("pk", flat=True):
        if cache.add(f"batches:resume:{batch_id}", 1, timeout=settings.BATCH_STALE_AFTER_S):
            enqueue(_run_task(), batch_id)
            sent += 1
    return sent
