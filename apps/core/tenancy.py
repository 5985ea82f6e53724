"""The only way views fetch user-owned resources: another tenant's id answers 404, never 403."""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Model, QuerySet

from workers.errors import NotFound

M = TypeVar("M", bound=Model)


def get_owned_or_404(
    queryset: QuerySet[M], *, owner: Any, label: str | None = None, param: str | None = None, **lookup: Any
) -> M:
    """Fetch one object of ``queryset`` owned by ``owner``; absent, foreign or malformed ids all give 404 (naming
    ``param``, the request field that held the id, when it came in a body)."""
    name = label or queryset.model._meta.verbose_name
    try:
        return queryset.get(owner=owner, **lookup)
    except (ObjectDoesNotExist, ValidationError, ValueError, TypeError):
        raise NotFound(f"No {name} with that id.", code="not_found", param=param) from None
