"""Admin pieces every app's admin shares."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest

from workers.errors import DomainError

M = TypeVar("M", bound=Model)


class ReadOnlyInline(admin.TabularInline):
    """Rows that services write (events, checkpoints): shown with their parent, never added or deleted here."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def act_on_each(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    objects: Iterable[M],
    *,
    act: Callable[[M], object],
    level: int = messages.WARNING,
) -> None:
    """An admin action's body: ``act`` on each selected object through its service; a refusal (``DomainError``)
    becomes a message naming the object, and the others still go ahead."""
    for obj in objects:
        try:
            act(obj)
        except DomainError as exc:
            # Quoted as the admin quotes object names: its message template capitalises the first letter, which would
            # change an id ("ftjob-…" shown as "Ftjob-…").
            model_admin.message_user(request, f"“{obj.pk}”: {exc.message}", level=level)
