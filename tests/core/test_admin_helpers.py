from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages

from apps.core.admin import act_on_each
from workers.errors import Conflict


@dataclass
class _Row:
    pk: str


class _Admin:
    def __init__(self) -> None:
        self.messages: list[tuple[str, int]] = []

    def message_user(self, request: Any, message: str, level: int) -> None:
        self.messages.append((message, level))


def test_a_refusal_is_reported_and_the_other_objects_still_go_ahead() -> None:
    done: list[str] = []

    def cancel(row: _Row) -> None:
        if row.pk == "b":
            raise Conflict("The batch is completed; it can no longer be cancelled.")
        done.append(row.pk)

    model_admin = _Admin()
    act_on_each(model_admin, None, [_Row("a"), _Row("b"), _Row("c")], act=cancel)

    assert done == ["a", "c"]
    assert model_admin.messages == [("“b”: The batch is completed; it can no longer be cancelled.", messages.WARNING)]


def test_the_level_of_a_refusal_is_the_callers() -> None:
    def refuse(row: _Row) -> None:
        raise Conflict("refused")

    model_admin = _Admin()
    act_on_each(model_admin, None, [_Row("m")], act=refuse, level=messages.ERROR)

    assert model_admin.messages == [("“m”: refused", messages.ERROR)]
