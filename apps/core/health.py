"""Readiness checks: database, cache, broker, workers and serving (the last three only when Redis is configured:
embedded, this process serves and runs jobs itself)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    latency_ms: float


def _timed(name: str, check: Callable[[], str]) -> CheckResult:
    start = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:  # a failing dependency is the answer, not an error of this endpoint
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return CheckResult(name=name, ok=ok, detail=detail, latency_ms=round((time.perf_counter() - start) * 1000, 2))


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _cache() -> str:
    key, value = f"readyz:{uuid.uuid4().hex}", "1"
    cache.set(key, value, timeout=5)
    if cache.get(key) != value:
        raise RuntimeError("value written to the cache could not be read back")
    cache.delete(key)
    return settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]


def _broker() -> str:
    from tigerplatform.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "redis"


def _workers() -> str:
    from tigerplatform.celery import app

    replies = app.control.ping(timeout=1.0)
    if not replies:
        raise RuntimeError("no Celery worker answered a ping")
    return ", ".join(sorted(name for reply in replies for name in reply))


def _serving() -> str:
    from apps.core import serve_liveness

    alive = serve_liveness.live_workers()
    if not alive:
        raise RuntimeError(
            f"no serve worker is alive (none renewed its heartbeat in the last {serve_liveness.WORKER_TTL_S} s): "
            "chat, completions, embeddings and rerank cannot be answered"
        )
    return ", ".join(alive)


def readiness_checks() -> list[CheckResult]:
    checks = [_timed("database", _database), _timed("cache", _cache)]
    if settings.REDIS_URL:
        checks += [_timed("broker", _broker), _timed("workers", _workers), _timed("serving", _serving)]
    return checks
