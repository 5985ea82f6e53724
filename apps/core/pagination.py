"""OpenAI-style cursor pagination: ``?after=<id>&limit=N`` → ``{object, data, first_id, last_id, has_more}``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet
from rest_framework import serializers

from workers.errors import InvalidRequest

M = TypeVar("M", bound=Model)

MAX_PAGE_SIZE = 100


class PageParamsSerializer(serializers.Serializer):
    # Blank (``?after=``) is the first page, as a form field left empty is absent.
    after = serializers.CharField(required=False, allow_blank=True, max_length=200)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=20)


def page_params(query_params: Any) -> dict[str, Any]:
    serializer = PageParamsSerializer(data=query_params)
    serializer.is_valid(raise_exception=True)
    return {"after": serializer.validated_data.get("after") or None, "limit": serializer.validated_data["limit"]}


def paginate_newest_first(queryset: QuerySet[M], *, after: str | None, limit: int) -> tuple[list[M], bool]:
    """Newest first by (created_at, id); ``after`` is the id of the last object of the previous page."""
    ordered = queryset.order_by("-created_at", "-pk")
    if after:
        anchor = queryset.filter(pk=after).values("created_at", "pk").first()
        if anchor is None:
            raise InvalidRequest("No object with that id in this list.", code="invalid_cursor", param="after")
        ordered = ordered.filter(
            Q(created_at__lt=anchor["created_at"]) | Q(created_at=anchor["created_at"], pk__lt=anchor["pk"])
        )
    rows = list(ordered[: limit + 1])
    return rows[:limit], len(rows) > limit


def list_body(items: Sequence[M], *, has_more: bool, render: Callable[[M], dict[str, Any]]) -> dict[str, Any]:
    """``first_id``/``last_id`` are the cursors ``after`` takes, i.e. primary keys, whatever field name a
    dialect renders the id under (TigerBot's jobs carry ``finetune_id``, not ``id``)."""
    return {
        "object": "list",
        "data": [render(item) for item in items],
        "first_id": str(items[0].pk) if items else None,
        "last_id": str(items[-1].pk) if items else None,
        "has_more": has_more,
    }
