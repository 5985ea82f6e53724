"""Fine-tuning tasks (queue ``train``): thin, status-guarded wrappers around the services."""

from __future__ import annotations

from celery import shared_task

from apps.finetune.services import jobs, training


@shared_task(name="finetune.prepare", acks_late=True, reject_on_worker_lost=True)
def prepare_job_task(job_id: str) -> None:
    training.finetune_job_prepare(job_id=job_id)


# Redelivered after a worker loss, the task finds the job running with a stale heartbeat and resumes it from
# its last checkpoint; a duplicate delivery finds it running (or done) and returns.
@shared_task(name="finetune.train", acks_late=True, reject_on_worker_lost=True)
def train_job_task(job_id: str) -> None:
    training.finetune_job_train(job_id=job_id)


@shared_task(name="finetune.maintenance.fail_stale_jobs")
def fail_stale_jobs_task() -> int:
    return jobs.fail_stale_jobs()
