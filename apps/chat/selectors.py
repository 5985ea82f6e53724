from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db.models import QuerySet

from apps.chat.models import ModelEndpoint


def model_endpoint_list(*, user: AbstractUser) -> QuerySet[ModelEndpoint]:
    """Base models every caller may use (fine-tuned models of the caller join this list in apps.finetune)."""
    return ModelEndpoint.objects.filter(enabled=True)
