"""Thin, idempotent tasks: generation first moves its job from ``queued`` to ``running`` in one UPDATE and does
nothing when that fails, so a repeated delivery is harmless."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.images import services


@shared_task(
    name="images.generate",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=settings.IMAGES_TIME_LIMIT_S,
    time_limit=settings.IMAGES_TIME_LIMIT_S + 60,
)
def image_generate_task(job_id: str) -> None:
    services.image_generation_run(job_id=job_id)


@shared_task(name="images.maintenance.fail_stale_jobs", ignore_result=True)
def fail_stale_jobs_task() -> int:
    return services.image_jobs_fail_stale()
