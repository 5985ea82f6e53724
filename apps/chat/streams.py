"""Chunks of a streamed answer, from the worker that generates them to the web process that sends them.

A Redis stream per request (``XADD`` by the worker, blocking ``XREAD`` by the web process): unlike pub/sub it
keeps what was written before the reader arrived, and it expires on its own if nobody reads it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Generator
from functools import cache
from typing import Any

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

_KEY = "tp:chatstream:{}"
_CANCEL_KEY = "tp:chatcancel:{}"
_TTL_S = 600
# Each blocking XREAD waits at most this long, under redis-py's default socket timeout (5 s since redis-py 6), which
# would otherwise end a longer block with a TimeoutError; the first and idle timeouts are counted across reads.
_POLL_S = 2.0


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def publish(*, request_id: str, event: dict[str, Any]) -> None:
    key = _KEY.format(request_id)
    pipe = _client().pipeline()
    pipe.xadd(key, {"e": json.dumps(event, ensure_ascii=False)}, maxlen=100_000, approximate=True)
    pipe.expire(key, _TTL_S)
    pipe.execute()


def cancel(*, request_id: str) -> None:
    """Tell the worker generating ``request_id`` that nobody reads it any more (the client disconnected); best
    effort: it runs on the way out of a stream, often because Redis went away, and must not hide why."""
    try:
        _client().set(_CANCEL_KEY.format(request_id), 1, ex=_TTL_S)
    except redis.RedisError as exc:
        logger.warning("could not cancel stream %s: %s: %s", request_id, type(exc).__name__, exc)


def is_cancelled(*, request_id: str) -> bool:
    return bool(_client().exists(_CANCEL_KEY.format(request_id)))


class StreamTimeoutError(Exception):
    """Nothing arrived within the idle timeout: the worker is gone or stuck."""


def consume(
    *,
    request_id: str,
    first_timeout_s: float,
    idle_timeout_s: float,
    on_silence: Callable[[], None] = lambda: None,
) -> Generator[dict[str, Any], None, None]:
    """Events in order until the generator is closed; raises ``StreamTimeoutError`` on silence, and calls
    ``on_silence`` after each read that found nothing (it may raise to give up sooner)."""
    key, last_id, timeout_s = _KEY.format(request_id), "0-0", first_timeout_s
    try:
        while True:
            reply = _read(key=key, last_id=last_id, timeout_s=timeout_s, on_silence=on_silence)
            for entry_id, fields in reply[0][1]:
                last_id = entry_id
                yield json.loads(fields[b"e"])
            timeout_s = idle_timeout_s
    finally:
        # Best effort (the key expires anyway): raising here would replace the error or close that brought us here.
        try:
            _client().delete(key)
        except redis.RedisError as exc:
            logger.warning("could not delete stream %s: %s: %s", key, type(exc).__name__, exc)


def _read(*, key: str, last_id: str, timeout_s: float, on_silence: Callable[[], None]) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        # block=0 would mean forever.
        reply = _client().xread({key: last_id}, count=256, block=max(1, int(min(remaining, _POLL_S) * 1000)))
        if reply:
            return list(reply)  # RESP2: [[key, entries]]
        on_silence()
    raise StreamTimeoutError(f"no output from the serving worker for {timeout_s:.0f} s")
