"""Batch tasks (queue ``batch``): thin, status-guarded wrappers around the services."""

from __future__ import annotations

from celery import shared_task
from celery.result import allow_join_result

from apps.batches import services


# Redelivered after a worker loss, or sent again by the stale check, the task resumes the batch where its journal
# ends; a duplicate finds the batch claimed (fresh heartbeat) or finished and returns.
@shared_task(name="batches.run", acks_late=True, reject_on_worker_lost=True)
def batch_run_task(batch_id: str) -> None:
    # Chat lines wait for a task of the `serve` queue. Celery forbids waiting on a task from a task because the
    # other task could need this very worker; `serve` has workers of its own, never this one, so it cannot.
    with allow_join_result():
        services.batch_run(batch_id=batch_id)


@shared_task(name="batches.maintenance.resume_stale")
def resume_stale_batches_task() -> int:
    return services.batch_resume_stale()
