"""Runs a batch's lines a few at a time on a thread pool, so a batch never fills the serving engine: live
requests keep getting their share of it. A line the engine refuses as overloaded waits and tries again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from django.db import connections
from rest_framework.exceptions import APIException

from apps.batches.endpoints import LineAnswer
from apps.batches.input_files import BatchLine, LineError
from apps.core.errors import error_body, exception_handler
from workers.errors import DomainError, ErrorKind

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OverloadRetry:
    """How long a line waits for an overloaded engine: ``first_delay_s``, doubling up to ``max_delay_s`` (or the
    engine's Retry-After when longer), for at most ``max_wait_s`` in all; then the 503 is the line's answer."""

    first_delay_s: float = 0.5
    max_delay_s: float = 10.0
    max_wait_s: float = 600.0


@dataclass(frozen=True)
class LineOutcome:
    """``answer`` when the endpoint answered 200, else ``status_code`` and ``error_body`` (its error JSON)."""

    line: BatchLine
    answer: LineAnswer | None
    status_code: int
    error_body: dict[str, Any] | None
    latency_ms: int


class LineNotRun(Exception):
    """The batch stopped while the line waited for the engine: it never ran."""


# A full engine, serve workers all busy or none running, the worker that took the line gone: none of these is the
# line's answer; a moment later (another worker, a restarted one) it can run.
_RETRIED_CODES = frozenset({"model_overloaded", "no_serving_worker", "worker_lost", "request_lost"})


def _overloaded(exc: Exception) -> bool:
    return isinstance(exc, DomainError) and exc.kind is ErrorKind.UNAVAILABLE and exc.code in _RETRIED_CODES


def call_with_overload_retry(
    call: Callable[[], LineAnswer], *, stop: threading.Event, retry: OverloadRetry
) -> LineAnswer:
    waited, delay = 0.0, retry.first_delay_s
    while True:
        try:
            return call()
        except DomainError as exc:
            if not _overloaded(exc) or waited >= retry.max_wait_s:
                raise
            pause = min(max(delay, float(exc.retry_after_s or 0)), retry.max_delay_s, retry.max_wait_s - waited)
            if stop.wait(pause):
                raise LineNotRun from exc
            waited, delay = waited + pause, min(delay * 2, retry.max_delay_s)


def _error_of(exc: Exception) -> tuple[int, dict[str, Any]]:
    """The status and JSON the HTTP endpoint would have answered for ``exc``."""
    if isinstance(exc, APIException | DomainError):
        response = exception_handler(exc, {})
        if response is not None:
            return response.status_code, response.data
    logger.exception("batch line failed", exc_info=exc)
    return 500, error_body(message="Internal server error.", code="internal_error", status_code=500)


def execute_line(
    *, line: BatchLine, run: Callable[[BatchLine], LineAnswer], stop: threading.Event, retry: OverloadRetry
) -> LineOutcome | None:
    """One line on a pool thread; None when it never ran (the batch stopped while it waited)."""
    started = time.monotonic()
    try:
        answer = call_with_overload_retry(lambda: run(line), stop=stop, retry=retry)
        return LineOutcome(
            line=line,
            answer=answer,
            status_code=200,
            error_body=None,
            latency_ms=int((time.monotonic() - started) * 1000),
        )
    except LineNotRun:
        return None
    except Exception as exc:
        status_code, body = _error_of(exc)
        return LineOutcome(
            line=line,
            answer=None,
            status_code=status_code,
            error_body=body,
            latency_ms=int((time.monotonic() - started) * 1000),
        )
    finally:
        connections.close_all()  # this thread's own connections: pool threads outlive no batch


def run_lines(
    *,
    items: Iterator[BatchLine | LineError],
    concurrency: int,
    run: Callable[[BatchLine], LineAnswer],
    on_outcome: Callable[[LineOutcome], None],
    on_line_error: Callable[[LineError], None],
    on_not_run: Callable[[BatchLine], None],
    stop_reason: Callable[[], str | None],
    retry: OverloadRetry,
    poll_s: float = 1.0,
) -> str | None:
    """Run ``items`` with at most ``concurrency`` lines in flight, reporting each result on this thread.

    ``stop_reason`` is asked at least every ``poll_s``; once it names a reason no new line starts, lines waiting
    out an overload give up (``on_not_run``), and the lines already running finish and are reported. Returns that
    reason (None: every line ran); lines not taken stay in ``items``."""
    stop = threading.Event()
    in_flight: dict[Future[LineOutcome | None], BatchLine] = {}
    exhausted, reason = False, None
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="batch-line") as pool:
        try:
            while True:
                reason = reason or stop_reason()
                if reason is not None:
                    stop.set()
                while reason is None and not exhausted and len(in_flight) < concurrency:
                    item = next(items, None)
                    if item is None:
                        exhausted = True
                    elif isinstance(item, LineError):
                        on_line_error(item)
                    else:
                        in_flight[pool.submit(execute_line, line=item, run=run, stop=stop, retry=retry)] = item
                if not in_flight and (exhausted or reason is not None):
                    return reason
                done, _ = wait(in_flight, timeout=poll_s, return_when=FIRST_COMPLETED)
                for future in done:
                    line = in_flight.pop(future)
                    if (outcome := future.result()) is not None:
                        on_outcome(outcome)
                    else:
                        on_not_run(line)
        finally:
            stop.set()  # leaving on an error: lines waiting out an overload give up instead of holding the pool
