"""What pdf2text and summarization jobs share: checking and storing an upload (a refused one leaves nothing
behind), queueing, claiming and ending a job, failing the ones whose worker vanished, and deleting a finished one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import PurePath
from typing import Any, TypeVar

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.core import storage
from apps.core.job_deletion import finished_job_delete
from apps.text import notify, selectors
from apps.text.models import JobStatus, TextJob
from workers.errors import DomainError, InvalidRequest, PayloadTooLarge

logger = logging.getLogger(__name__)
T = TypeVar("T")
J = TypeVar("J", bound=TextJob)

SNIFF_BYTES = 1024
"""The PDF header may follow some junk (the spec tolerates it, readers look this far)."""
WORKER_LOST = "worker_lost"


def upload_head(upload: UploadedFile) -> bytes:
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    return head


def check_size(upload: UploadedFile, *, max_bytes: int) -> None:
    if not upload.size:
        raise InvalidRequest("The uploaded file is empty.", code="empty_file", param="file")
    if upload.size > max_bytes:
        raise file_too_large(max_bytes=max_bytes)


def file_too_large(*, max_bytes: int) -> DomainError:
    return PayloadTooLarge(
        f"The file is larger than the limit of {max_bytes} bytes.", code="file_too_large", param="file"
    )


def clean_filename(name: str | None, *, default: str) -> str:
    base = PurePath((name or "").replace("\\", "/")).name
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:255] or default


@dataclass
class _StoredUpload:
    name: str

    @property
    def path(self) -> str:
        return str(storage.local_path(name=self.name))

    def delete(self) -> None:
        storage.evict(name=self.name)
        default_storage.delete(self.name)


def create_with_file(*, upload: UploadedFile, name: str, check: Callable[[str], T], create: Callable[[str, T], J]) -> J:
    """Store ``upload``, run ``check`` on the stored file and ``create`` the job row from what it found; on any
    failure the file goes again, so a refused upload leaves neither a row nor a file behind."""
    stored = _StoredUpload(default_storage.save(name, upload))
    try:
        try:
            found = check(stored.path)
        finally:
            storage.evict(name=stored.name)
        with transaction.atomic():
            return create(stored.name, found)
    except BaseException:
        stored.delete()
        raise


def enqueue_job(task: Any, model: type[TextJob], job_id: str) -> None:
    try:
        task.delay(job_id)
    except Exception as exc:  # the broker is down: say so on the job rather than leave it queued forever
        logger.exception("could not queue %s", job_id)
        finish(
            model.objects.filter(pk=job_id, status=JobStatus.QUEUED),
            status=JobStatus.FAILED,
            error_code="queue_unavailable",
            error_message=f"The job could not be queued: {exc}",
        )


def claim(model: type[TextJob], job_id: str) -> bool:
    """queued → running, atomically: only one task ever runs a job, and a repeated delivery does nothing."""
    now = timezone.now()
    return bool(
        model.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=now, heartbeat_at=now
        )
    )


def finish(
    queryset: QuerySet[Any], *, status: JobStatus, error_code: str = "", error_message: str = "", **fields: Any
) -> int:
    """Ends the job unless something else ended it first (e.g. the stale-job sweep); forgets its password."""
    now = timezone.now()
    ids = list(queryset.values_list("pk", flat=True)[:1000])
    ended = queryset.filter(pk__in=ids).update(
        status=status,
        error_code=error_code,
        error_message=error_message[:2000],
        finished_at=now,
        heartbeat_at=now,
        password="",
        **fields,
    )
    if ended:
        for job_id in ids:
            transaction.on_commit(partial(notify.job_finished, job_id=job_id))
    return ended


def fail_timed_out(queryset: QuerySet[Any], **fields: Any) -> int:
    """Ends the job as failed because its task ran past the soft time limit."""
    return finish(
        queryset,
        status=JobStatus.FAILED,
        error_code="timeout",
        error_message="The job ran past its time limit and was stopped.",
        **fields,
    )


def fail_unexpected(queryset: QuerySet[Any], exc: Exception, **fields: Any) -> int:
    """Ends the job as failed by an error nothing anticipated (the caller logs the traceback)."""
    return finish(
        queryset,
        status=JobStatus.FAILED,
        error_code="internal_error",
        error_message=f"{type(exc).__name__}: {exc}",
        **fields,
    )


def text_jobs_fail_stale() -> int:
    """Ends as ``failed``/``worker_lost`` every running job that has outlived its worker (see the selectors).
    Run periodically by ``text.maintenance.fail_stale_jobs`` (CELERY_BEAT_SCHEDULE)."""
    now = timezone.now()
    ended = 0
    for stale, limit in (
        (
            selectors.pdf2text_stale_jobs(now=now),
            f"no result {settings.PDF2TEXT_TIMEOUT_S + settings.TEXT_STALE_MARGIN_S} s after it started",
        ),
        (selectors.summarization_stale_jobs(now=now), f"no progress for {settings.SUMMARIZATION_HEARTBEAT_STALE_S} s"),
    ):
        ended += finish(
            stale,
            status=JobStatus.FAILED,
            error_code=WORKER_LOST,
            error_message=f"The worker running this job stopped before it finished ({limit}).",
        )
    return ended


def text_job_delete(*, job: TextJob) -> None:
    """Delete a finished job and its uploaded file (a job still queued or running is a ``Conflict``)."""
    finished_job_delete(job=job)
