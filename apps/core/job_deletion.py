"""Deleting a finished job at its owner's request (pdf2text, summarization, image generation): its rows go in one
transaction, its stored files once that has committed. A job still queued or running is refused: its task would go
on writing into rows and files that are gone, and these jobs have no cancel."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from django.db import transaction
from django.db.models import Model

from apps.core import storage
from workers.errors import Conflict, NotFound


def finished_job_delete(
    *, job: Model, finished: Collection[str], stored_names: Callable[[], Iterable[str | None]]
) -> None:
    """Delete ``job`` (its dependent rows cascade), then the stored files ``stored_names`` lists once the deletion
    has committed. ``Conflict`` (``job_not_finished``) while its ``status`` is not one of ``finished``; ``NotFound``
    when a concurrent request deleted it first.

    A finished state is final, so the files listed once the job is seen finished are all it will ever have; the
    delete itself is filtered on the finished states as well, like every status-guarded write of these jobs."""
    jobs = type(job)._default_manager.filter(pk=job.pk)
    with transaction.atomic():
        status = jobs.values_list("status", flat=True).first()
        if status is not None and status not in finished:
            raise Conflict(
                "This job is still queued or running; wait until it finishes, then delete it.",
                code="job_not_finished",
            )
        names = list(stored_names())
        deleted, _ = jobs.filter(status__in=finished).delete()
        if not deleted:
            raise NotFound(f"No {job._meta.verbose_name} with that id.", code="not_found")
        storage.delete_after_commit(names=names)
