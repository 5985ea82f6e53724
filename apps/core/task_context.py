"""The request id follows the work into Celery: a task is sent with the current id in a message header, and a
worker binds it while the task runs, so every line the task logs (and every task it sends) carries it.

Also keeps Celery off the root logger, so a worker logs through settings' ``LOGGING`` (JSON lines, request ids).
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import Token
from typing import Any

from celery import signals

from apps.core.logging import RequestIdFilter, log_to_file
from apps.core.request_id import get_request_id, reset_request_id, set_request_id

HEADER = "x_request_id"
_tokens: dict[str, Token[str | None]] = {}


@signals.before_task_publish.connect(weak=False)
def _stamp_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = get_request_id()
    if request_id is not None and headers is not None:
        headers.setdefault(HEADER, request_id)


@signals.task_prerun.connect(weak=False)
def _bind_request_id(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    # In-process (eager) runs have no header and keep the id of the thread that runs them.
    request_id = getattr(task.request, HEADER, None) if task is not None else None
    if task_id is not None and isinstance(request_id, str):
        _tokens[task_id] = set_request_id(request_id)


@signals.task_postrun.connect(weak=False)
def _unbind_request_id(task_id: str | None = None, **_: Any) -> None:
    token = _tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        reset_request_id(token)


@signals.setup_logging.connect(weak=False)
def _keep_settings_logging(logfile: str | None = None, **_: Any) -> None:
    """Connected, this stops Celery from configuring logging itself; settings' ``LOGGING`` applies instead."""
    root = logging.getLogger()
    if not any(isinstance(f, RequestIdFilter) for handler in root.handlers for f in handler.filters):
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)
    if logfile:
        log_to_file(path=logfile)
