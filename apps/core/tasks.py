from __future__ import annotations

from collections.abc import Callable

from celery import Task, shared_task

from apps.core.job_deletion import expired_jobs_delete


@shared_task(name="core.ping")
def ping(value: str) -> str:
    """Round-trip check for the broker and workers."""
    return f"pong:{value}"


@shared_task(name="core.maintenance.delete_expired_jobs", ignore_result=True)
def delete_expired_jobs_task() -> int:
    return expired_jobs_delete()


def job_run_task(*, name: str, time_limit_s: int) -> Callable[[Callable[[str], None]], Task[[str], None]]:
    """The decorator of a task that runs one job by id: redelivered if its worker dies (the job's own
    ``queued`` -> ``running`` claim makes that harmless), stopped softly after ``time_limit_s`` seconds and
    killed a minute later."""
    return shared_task(
        name=name,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        soft_time_limit=time_limit_s,
        time_limit=time_limit_s + 60,
    )
