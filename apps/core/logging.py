"""Log formatting: one JSON object per line (``LOG_FORMAT=json``, the default) or a plain line for people
(``LOG_FORMAT=plain``); either way each record made while a request id is bound carries it (``request_id``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from apps.core.request_id import get_request_id


class RequestIdFilter(logging.Filter):
    """Stamps the current request id on each record (on the handler, so library loggers' records get it too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None and (request_id := get_request_id()) is not None:
            record.request_id = request_id
        return True


class HideTaskResults(logging.Filter):
    """Celery's "Task ... succeeded" line would print what the task returned: a generated answer, for chat."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict) and "return_value" in record.args:
            record.args = {**record.args, "return_value": "(not logged)"}
        return True


class JsonFormatter(_JsonFormatter):
    """``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, then the record's extra fields.

    Celery's task lines carry the task's arguments as an extra ``data`` field (prompts, model endpoint specs with
    their upstream keys): never written out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, "data"],
            **kwargs,
        )

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_record["timestamp"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        super().add_fields(log_record, record, message_dict)


class PlainFormatter(logging.Formatter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", defaults={"request_id": "-"}, **kwargs
        )


def logging_config(*, log_format: str, level: str, quiet_task_trace: bool) -> dict[str, Any]:
    """Settings' ``LOGGING``: one console handler with the request id filter and the chosen formatter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}, "hide_task_results": {"()": HideTaskResults}},
        "formatters": {"json": {"()": JsonFormatter}, "plain": {"()": PlainFormatter}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["request_id"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"level": "ERROR"},
            # The access middleware writes one line per request; the server's would repeat it.
            "django.server": {"level": "WARNING"},
            # In-process (eager) tasks would log every usage record at INFO.
            "celery.app.trace": {"level": "WARNING" if quiet_task_trace else "INFO", "filters": ["hide_task_results"]},
            "faiss.loader": {"level": "WARNING"},
            "ContinuousBatchingLogger": {"level": "WARNING"},
            # Warns on import, on every start of every process, that an optional faster CPU kernel is not installed.
            "bitsandbytes.backends.cpu.ops": {"level": "ERROR"},
        },
    }


def log_to_file(*, path: str) -> None:
    """A worker's ``--logfile``: the console's lines go to that file instead (as Celery's own logging does)."""
    root = logging.getLogger()
    handler = logging.FileHandler(path)
    for console in [h for h in root.handlers if any(isinstance(f, RequestIdFilter) for f in h.filters)]:
        handler.setFormatter(console.formatter)
        for log_filter in console.filters:
            handler.addFilter(log_filter)
        root.removeHandler(console)
    root.addHandler(handler)
