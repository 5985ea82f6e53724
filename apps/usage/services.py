from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.usage.models import UsageRecord


def usage_record_create(
    *,
    owner_id: int,
    api_key_id: str | None,
    route: str,
    model: str = "",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    latency_ms: int = 0,
    status_code: int = 200,
    created_at: datetime | None = None,
    images: int = 0,
) -> UsageRecord:
    return UsageRecord.objects.create(
        owner_id=owner_id,
        api_key_id=api_key_id,
        route=route,
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency_ms,
        status_code=status_code,
        images=images,
        created_at=created_at or timezone.now(),
    )


def usage_record(
    *,
    owner_id: int,
    api_key_id: str | None,
    route: str,
    model: str = "",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    latency_ms: int = 0,
    status_code: int = 200,
    images: int = 0,
) -> None:
    """Records a billable call off the request path: a task on the default queue once the request commits."""
    from apps.usage.tasks import record_usage_task

    fields: dict[str, Any] = {
        "owner_id": owner_id,
        "api_key_id": api_key_id,
        "route": route,
        "model": model,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_ms": latency_ms,
        "status_code": status_code,
        "images": images,
        "created_at": timezone.now().isoformat(),
    }
    transaction.on_commit(lambda: record_usage_task.delay(fields))
