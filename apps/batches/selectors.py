from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.batches.models import Batch
from apps.core.tenancy import get_owned_or_404
from apps.finetune.models import TrainingFile
from workers.errors import NotFound


def batch_list(*, owner: User) -> QuerySet[Batch]:
    return Batch.objects.filter(owner=owner)


def batch_get(*, owner: User, batch_id: str) -> Batch:
    return get_owned_or_404(Batch.objects.all(), owner=owner, label="batch", pk=batch_id)


def batch_input_file_get(*, owner: User, file_id: str) -> TrainingFile:
    """The caller's uploaded file (any purpose: the caller checks it); another tenant's id is a 404 too."""
    found = TrainingFile.objects.filter(owner=owner, pk=file_id).first()
    if found is None:
        raise NotFound(f"No file with id {file_id!r}.", code="not_found", param="input_file_id")
    return found


def stale_batches() -> QuerySet[Batch]:
    """Batches no runner is working on: their heartbeat stopped (the worker died), or nobody ever picked them up
    (a lost task, or an embedded process that restarted)."""
    cutoff = timezone.now() - timedelta(seconds=settings.BATCH_STALE_AFTER_S)
    return Batch.objects.filter(
        Q(status__in=Batch.ACTIVE, heartbeat_at__lt=cutoff)
        | Q(status=Batch.Status.VALIDATING, heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
