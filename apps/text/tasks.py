"""Thin, idempotent tasks: each one first moves its job from ``queued`` to ``running`` in one UPDATE and does
nothing when that fails, so a repeated delivery (``acks_late`` + ``reject_on_worker_lost``) is harmless."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.core.tasks import job_run_task
from apps.text.services import jobs, pdf2text, summarization


@shared_task(name="text.pdf2text", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def pdf2text_task(job_id: str) -> None:
    pdf2text.pdf2text_run(job_id=job_id)


@job_run_task(name="summarization.run", time_limit_s=settings.SUMMARIZATION_TIME_LIMIT_S)
def summarization_task(job_id: str) -> None:
    summarization.summarization_run(job_id=job_id)


@shared_task(name="text.maintenance.fail_stale_jobs", ignore_result=True)
def fail_stale_jobs_task() -> int:
    return jobs.text_jobs_fail_stale()
