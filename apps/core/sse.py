"""Server-sent events over Django's streaming response (works under gunicorn's threaded workers).

While the first event is being produced (a request queued in a busy engine, a long prompt being read), a comment
line is sent every ``SSE_KEEPALIVE_S`` seconds, so proxies and load balancers with idle timeouts keep the
connection open. After the first event the stream is read directly, with no thread hand-off per chunk.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from queue import Empty, Queue
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse

from apps.core.errors import OUTAGES, outage_error
from workers.errors import DomainError, InternalFailure

logger = logging.getLogger(__name__)

DONE = object()
"""Yield this to send OpenAI's closing ``data: [DONE]``."""
KEEPALIVE = b": keep-alive\n\n"
_END = object()


def _encode(events: Iterable[Any]) -> Generator[bytes, None, None]:
    try:
        for event in events:
            if event is DONE:
                yield b"data: [DONE]\n\n"
            else:
                yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
    finally:
        # Closed at once when the client goes, so that generation behind it stops (a for loop, unlike yield from,
        # leaves that to the garbage collector).
        close = getattr(events, "close", None)
        if close is not None:
            close()


def _with_keepalive(chunks: Generator[bytes, None, None], *, interval_s: float) -> Iterator[bytes]:
    """``chunks``, with keep-alive comments while the first one is awaited (in a helper thread)."""
    first: Queue[Any] = Queue(maxsize=1)
    abandoned = threading.Event()
    closing = threading.Lock()
    closed: list[bool] = []

    def close_once() -> None:
        with closing:
            if not closed:
                closed.append(True)
                chunks.close()  # the client left: cancel the generation behind the stream

    def produce_first() -> None:
        try:
            first.put(next(chunks, _END))
        except BaseException as exc:  # handed to the response thread, which re-raises it
            first.put(exc)
        if abandoned.is_set():
            close_once()

    # In the response's context, so what the first chunk's producer logs carries the request id.
    threading.Thread(
        target=contextvars.copy_context().run, args=(produce_first,), name="sse-first", daemon=True
    ).start()
    try:
        while True:
            try:
                item = first.get(timeout=interval_s)
                break
            except Empty:
                yield KEEPALIVE
    except GeneratorExit:
        abandoned.set()
        if not first.empty():  # the producer is done with the stream (it may close it too: hence once)
            close_once()
        raise
    if isinstance(item, BaseException):
        raise item
    if item is _END:
        return
    try:
        yield item
        yield from chunks
    finally:
        close_once()  # a client gone after the first chunk: close now, not whenever the generator is collected


def guarded_stream(
    events: Iterator[Any], *, on_error: Callable[[DomainError], list[Any]], on_close: Callable[[], None]
) -> Iterator[Any]:
    """Errors after the response has started become a final error event in the stream's own dialect (an outage of
    Redis or the database is a ``service_unavailable``, an unexpected one is logged and reported as
    ``internal_error``); ``on_close`` runs in any case, and what it raises is logged, never sent: the stream has
    its end already, and an exception out of here would cut the connection before it."""
    try:
        yield from events
    except DomainError as exc:
        yield from on_error(exc)
    except OUTAGES as exc:
        yield from on_error(outage_error(exc))
    except Exception:
        logger.exception("stream failed after the response started")
        yield from on_error(InternalFailure("Internal server error.", code="internal_error"))
    finally:
        _close(on_close)


def _close(on_close: Callable[[], None]) -> None:
    try:
        on_close()
    except OUTAGES as exc:  # the usage record, say, with its broker gone
        logger.warning("a stream's closing step failed: %s: %s", type(exc).__name__, exc)
    except Exception:
        logger.exception("a stream's closing step failed")


def sse_response(events: Iterable[Any]) -> StreamingHttpResponse:
    body = _with_keepalive(_encode(events), interval_s=settings.SSE_KEEPALIVE_S)
    response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response
