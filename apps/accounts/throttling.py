"""Per-key requests/minute on the shared cache (Redis when configured): a fixed one-minute window."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.accounts.models import ApiKey
from apps.metrics.rejections import RATE_LIMITED

if TYPE_CHECKING:
    from rest_framework.views import APIView

_WINDOW_S = 60


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset_s: float


class _LocalCounter:
    """Without Redis the cache is per-process anyway; a plain locked dict counts the same, without pickling."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._window = -1
        self._lock = threading.Lock()

    def incr(self, key: str, window: int) -> int:
        with self._lock:
            if window != self._window:
                self._counts.clear()
                self._window = window
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
            return count


_local_counter = _LocalCounter()


def _count_request(cache_key: str, window: int) -> int:
    if not settings.REDIS_URL:
        return _local_counter.incr(cache_key, window)
    try:
        return cache.incr(cache_key)
    except ValueError:  # first request of the window
        if cache.add(cache_key, 1, timeout=_WINDOW_S + 10):
            return 1
        return cache.incr(cache_key)


class ApiKeyRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        now = time.time()
        window = int(now // _WINDOW_S)
        reset_s = (window + 1) * _WINDOW_S - now
        limit = api_key.effective_rate_limit
        count = _count_request(f"ratelimit:{api_key.pk}:{window}", window)
        # Read back by RateLimitHeadersMiddleware; django-stubs' HttpRequest declares no such attribute.
        request._request.ratelimit = RateLimitState(  # type: ignore[attr-defined]
            limit=limit, remaining=max(0, limit - count), reset_s=reset_s
        )
        if count > limit:
            RATE_LIMITED.inc()
            self._wait = reset_s
            return False
        return True

    def wait(self) -> float | None:
        return self._wait
