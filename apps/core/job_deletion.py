"""Deleting a finished job (pdf2text, summarization, image generation), at its owner's request or once the
operator's retention (``JOB_RETENTION_DAYS``) has run out: its rows go in one transaction, its stored files once
that has committed. A job still queued or running is refused: its task would go on writing into rows and files that
are gone, and these jobs have no cancel."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol, cast

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from apps.core import storage
from apps.core.job_states import FINISHED
from workers.errors import Conflict, NotFound

# A sweep deletes this many jobs of each kind at most; the next one goes on where it stopped.
EXPIRED_PER_SWEEP = 500


class StoredFilesOwner(Protocol):
    def stored_file_names(self) -> list[str]:
        """The names of the stored files that go with it (its upload, its images)."""
        ...


def finished_job_delete(*, job: Model) -> None:
    """Delete ``job`` (its dependent rows cascade), then its stored files (``stored_file_names``) once the deletion
    has committed. ``Conflict`` (``job_not_finished``) while it is queued or running; ``NotFound`` when a
    concurrent request deleted it first.

    A finished state is final, so the files listed once the job is seen finished are all it will ever have; the
    delete itself is filtered on the finished states as well, like every status-guarded write of these jobs."""
    jobs = type(job)._default_manager.filter(pk=job.pk)
    with transaction.atomic():
        status = jobs.values_list("status", flat=True).first()
        if status is not None and status not in FINISHED:
            raise Conflict(
                "This job is still queued or running; wait until it finishes, then delete it.",
                code="job_not_finished",
            )
        names = cast(StoredFilesOwner, job).stored_file_names()
        deleted, _ = jobs.filter(status__in=FINISHED).delete()
        if not deleted:
            raise NotFound(f"No {job._meta.verbose_name} with that id.", code="not_found")
        storage.delete_after_commit(names=names)


def expired_jobs_delete(*, now: datetime | None = None) -> int:
    """Delete the jobs of the kinds ``JOB_RETENTION_MODELS`` names that finished more than ``JOB_RETENTION_DAYS``
    ago (0: none ever), oldest first; how many went. Run by ``core.maintenance.delete_expired_jobs``."""
    if settings.JOB_RETENTION_DAYS <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=settings.JOB_RETENTION_DAYS)
    deleted = 0
    for label in settings.JOB_RETENTION_MODELS:
        expired = apps.get_model(label)._default_manager.filter(status__in=FINISHED, finished_at__lt=cutoff)
        for job in expired.order_by("finished_at")[:EXPIRED_PER_SWEEP]:
            try:
                finished_job_delete(job=job)
            except NotFound:
                continue  # its owner deleted it meanwhile
            deleted += 1
    return deleted
