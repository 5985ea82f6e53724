from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.core.tenancy import get_owned_or_404
from apps.text import notify
from apps.text.models import FINISHED, JobStatus, Pdf2TextJob, SummarizationJob, TextJob

J = TypeVar("J", bound=TextJob)

# Polling a job while a request waits for it: quick at first (small documents finish in a fraction of a
# second), then at most a few queries a second.
_FIRST_POLL_S = 0.02
_MAX_POLL_S = 0.2


def pdf2text_job_list(*, owner: AbstractUser) -> QuerySet[Pdf2TextJob]:
    return Pdf2TextJob.objects.filter(owner=owner).defer("result", "password")


def pdf2text_job_get(*, owner: AbstractUser, job_id: str) -> Pdf2TextJob:
    return get_owned_or_404(Pdf2TextJob.objects.all(), owner=owner, label="pdf2text job", pk=job_id)


def summarization_job_list(*, owner: AbstractUser) -> QuerySet[SummarizationJob]:
    return SummarizationJob.objects.filter(owner=owner).defer("input_text", "password")


def summarization_job_get(*, owner: AbstractUser, job_id: str) -> SummarizationJob:
    return get_owned_or_404(
        SummarizationJob.objects.defer("input_text"), owner=owner, label="summarization job", pk=job_id
    )


def pdf2text_stale_jobs(*, now: datetime | None = None) -> QuerySet[Pdf2TextJob]:
    """Running longer than an extraction may take (its child is killed at PDF2TEXT_TIMEOUT_S), plus a margin:
    the worker that ran it is gone."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.PDF2TEXT_TIMEOUT_S + settings.TEXT_STALE_MARGIN_S)
    return Pdf2TextJob.objects.filter(status=JobStatus.RUNNING, started_at__lt=cutoff)


def summarization_stale_jobs(*, now: datetime | None = None) -> QuerySet[SummarizationJob]:
    """Silent for longer than one model call may take, or running past the task's hard time limit."""
    now = now or timezone.now()
    silent = now - timedelta(seconds=settings.SUMMARIZATION_HEARTBEAT_STALE_S)
    overdue = now - timedelta(seconds=settings.SUMMARIZATION_TIME_LIMIT_S + settings.TEXT_STALE_MARGIN_S)
    return SummarizationJob.objects.filter(status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=silent) | Q(started_at__lt=overdue)
    )


def text_job_wait(*, job: J, timeout_s: float) -> J:
    """``job`` re-read once it has finished or ``timeout_s`` (at most TEXT_MAX_WAIT_S) has passed. With Redis the
    worker's announcement wakes the wait at once; the job is re-read at least every second regardless."""
    deadline = time.monotonic() + min(timeout_s, settings.TEXT_MAX_WAIT_S)
    delay = _FIRST_POLL_S
    while not job.is_finished and (remaining := deadline - time.monotonic()) > 0:
        if notify.enabled():
            notify.wait_finished(job_id=job.pk, timeout_s=min(remaining, 1.0))
        else:
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, _MAX_POLL_S)
        status = type(job).objects.filter(pk=job.pk).values_list("status", flat=True).first()
        if status in FINISHED:
            job.refresh_from_db()
    return job
