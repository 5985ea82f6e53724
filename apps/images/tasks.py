"""Thin, idempotent tasks: generation first moves its job from ``queued`` to ``running`` in one UPDATE and does
nothing when that fails, so a repeated delivery is harmless."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.core.tasks import job_run_task
from apps.images import services


@job_run_task(name="images.generate", time_limit_s=settings.IMAGES_TIME_LIMIT_S)
def image_generate_task(job_id: str) -> None:
    services.image_generation_run(job_id=job_id)


@shared_task(name="images.maintenance.fail_stale_jobs", ignore_result=True)
def fail_stale_jobs_task() -> int:
    return services.image_jobs_fail_stale()
