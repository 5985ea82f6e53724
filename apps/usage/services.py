from __future__ import annotations

from datetime import datetime
from typing import Required, TypedDict, Unpack

from django.db import transaction
from django.utils import timezone

from apps.usage.models import UsageRecord


class UsageFields(TypedDict, total=False):
    """One billable call; what is left out takes the model's default (0, "", status 200)."""

    owner_id: Required[int]
    api_key_id: Required[str | None]
    route: Required[str]
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    status_code: int
    images: int


def usage_record_create(*, created_at: datetime | None = None, **fields: Unpack[UsageFields]) -> UsageRecord:
    return UsageRecord.objects.create(created_at=created_at or timezone.now(), **fields)


def usage_record(**fields: Unpack[UsageFields]) -> None:
    """Records a billable call off the request path: a task on the default queue once the request commits."""
    from apps.usage.tasks import record_usage_task

    payload = {**fields, "created_at": timezone.now().isoformat()}
    transaction.on_commit(lambda: record_usage_task.delay(payload))
