from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils.dateparse import parse_datetime

from apps.usage.services import usage_record_create


@shared_task(name="usage.record", ignore_result=True)
def record_usage_task(fields: dict[str, Any]) -> None:
    usage_record_create(**{**fields, "created_at": parse_datetime(fields["created_at"])})
