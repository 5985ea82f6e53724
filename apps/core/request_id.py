"""The request id of the work in progress, in a context variable: the HTTP request's (``apps.core.access``), or
the one a Celery task was sent with (``apps.core.task_context``). Log lines, tasks and Sentry events carry it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

# Ids from proxies and clients (uuids, ULIDs, trace ids) fit; anything else could forge or flood log fields.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
_current: ContextVar[str | None] = ContextVar("request_id", default=None)


def get_request_id() -> str | None:
    return _current.get()


def set_request_id(request_id: str) -> Token[str | None]:
    """For a binding that outlives one block (a task's run, between two signals); undo with ``reset_request_id``."""
    return _current.set(request_id)


def reset_request_id(token: Token[str | None]) -> None:
    _current.reset(token)


@contextmanager
def bind_request_id(request_id: str | None) -> Iterator[None]:
    """Makes ``request_id`` the current one inside the block (``None``: leaves the current one as it is)."""
    if request_id is None:
        yield
        return
    token = _current.set(request_id)
    try:
        yield
    finally:
        _current.reset(token)


def clean_request_id(raw: str | None) -> str:
    if raw and _SANE.fullmatch(raw):
        return raw
    return uuid.uuid4().hex
