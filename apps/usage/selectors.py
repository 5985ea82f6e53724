from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from apps.usage.models import UsageRecord


def usage_totals_by_day_and_model(*, owner: User, start: date, end: date) -> list[dict[str, Any]]:
    """Per (UTC day, model) totals for ``start <= day <= end``."""
    rows = (
        UsageRecord.objects.filter(owner=owner, created_at__date__gte=start, created_at__date__lte=end)
        .annotate(day=TruncDate("created_at"))
        .values("day", "model")
        .annotate(
            requests=Count("id"),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            images=Sum("images"),
        )
        .order_by("day", "model")
    )
    return [
        {
            "date": row["day"].isoformat(),
            "model": row["model"],
            "requests": row["requests"],
            "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"],
            "total_tokens": row["prompt_tokens"] + row["completion_tokens"],
            "images": row["images"],
        }
        for row in rows
    ]
