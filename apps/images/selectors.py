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
from apps.chat.selectors import model_endpoint_list
from apps.core.errors import ApiError, NotFoundError
from apps.core.tenancy import get_owned_or_404
from apps.images.models import GeneratedImage, ImageJob

_FIRST_POLL_S = 0.02
_MAX_POLL_S = 0.25


def image_model_get(*, model: Any, param: str = "model") -> ModelEndpoint:
    """The enabled image model called ``model`` (the default one, or the only one, when None). Unknown: 404
    ``model_not_found``; a model of another kind: 400 ``not_an_image_model``."""
    endpoints = model_endpoint_list(kind=ModelEndpoint.Kind.IMAGE)
    if model is None:
        only = list(endpoints[:2])
        endpoint = endpoints.filter(is_default=True).first() or (only[0] if len(only) == 1 else None)
        if endpoint is None:
            raise ApiError("No default image model is configured; pass `model`.", code="model_required",
                           param=param)
        return endpoint
    endpoint = endpoints.filter(name=model).first()
    if endpoint is not None:
        return endpoint
    other = model_endpoint_list().filter(name=model).first()
    if other is not None:
        raise ApiError(f"{model!r} is a {other.kind} model, not an image model.", code="not_an_image_model",
                       param=param)
    raise NotFoundError(f"The image model {model!r} does not exist.", code="model_not_found", param=param)


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
        Q(heartbeat_at__lt=silent) | Q(started_at__lt=overdue))


def image_job_wait(*, job: ImageJob, timeout_s: float) -> ImageJob:
    """``job`` re-read once it has finished or ``timeout_s`` has passed (polling, quickly at first)."""
    deadline = time.monotonic() + timeout_s
    delay = _FIRST_POLL_S
    while not job.is_finished and (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(delay, remaining))
        delay = min(delay * 1.5, _MAX_POLL_S)
        job.refresh_from_db()
    return job
