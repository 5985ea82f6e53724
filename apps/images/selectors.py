"""Reads: image models by name, a tenant's image jobs and images, jobs whose worker is gone."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.chat.models import ModelEndpoint
from apps.chat.selectors import model_endpoint_of_kind_get
from apps.core.tenancy import get_owned_or_404
from apps.images.models import GeneratedImage, ImageJob

_FIRST_POLL_S = 0.02
_MAX_POLL_S = 0.25


def image_model_get(*, model: Any, param: str = "model") -> ModelEndpoint:
    """The enabled image model called ``model`` (the default one, or the only one, when None); see
    ``model_endpoint_of_kind_get``."""
    return model_endpoint_of_kind_get(kind=ModelEndpoint.Kind.IMAGE, model=model, param=param, sole_is_default=True)


def image_job_get(*, owner: AbstractUser, job_id: str) -> ImageJob:
    return get_owned_or_404(ImageJob.objects.all(), owner=owner, label="image generation", pk=job_id)


def image_job_list(*, owner: AbstractUser) -> QuerySet[ImageJob]:
    return ImageJob.objects.filter(owner=owner)


def image_list(*, job: ImageJob) -> list[GeneratedImage]:
    return list(job.images.order_by("index"))


def image_get(*, owner: AbstractUser, image_id: str) -> GeneratedImage:
    return get_owned_or_404(GeneratedImage.objects.all(), owner=owner, label="image", pk=image_id)


def image_stale_jobs(*, now: datetime | None = None) -> QuerySet[ImageJob]:
    """Running, but silent for IMAGES_HEARTBEAT_STALE_S (a step reports at least that often) or past the task's
    time limit: the worker that ran it is gone."""
    now = now or timezone.now()
    silent = now - timedelta(seconds=settings.IMAGES_HEARTBEAT_STALE_S)
    overdue = now - timedelta(seconds=settings.IMAGES_TIME_LIMIT_S + settings.TEXT_STALE_MARGIN_S)
    return ImageJob.objects.filter(status=ImageJob.Status.RUNNING).filter(
        Q(heartbeat_at__lt=silent) | Q(started_at__lt=overdue)
    )


def image_job_wait(*, job: ImageJob, timeout_s: float) -> ImageJob:
    """``job`` re-read once it has finished or ``timeout_s`` has passed (polling, quickly at first)."""
    deadline = time.monotonic() + timeout_s
    delay = _FIRST_POLL_S
    while not job.is_finished and (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, _MAX_POLL_S)
        job.refresh_from_db()
    return job
