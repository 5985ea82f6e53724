"""Requests/minute per key, and per account where one is limited, on the shared cache (Redis when configured): a
fixed one-minute window."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled
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


def _count_against(cache_key: str, *, window: int, limit: int, reset_s: float) -> tuple[RateLimitState, bool]:
    count = _count_request(cache_key, window)
    return RateLimitState(limit=limit, remaining=max(0, limit - count), reset_s=reset_s), count > limit


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: APIView) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        now = time.time()
        window = int(now // _WINDOW_S)
        reset_s = (window + 1) * _WINDOW_S - now
        state, key_over = _count_against(
            f"ratelimit:{api_key.pk}:{window}", window=window, limit=api_key.effective_rate_limit, reset_s=reset_s
        )
        exceeded = "this API key" if key_over else None
        account_limit = api_key.account_rate_limit
        if exceeded is None and account_limit is not None:
            account_state, account_over = _count_against(
                f"ratelimit:account:{api_key.owner_id}:{window}", window=window, limit=account_limit, reset_s=reset_s
            )
            if account_state.remaining < state.remaining:  # the headers tell the limit that binds first
                state = account_state
            if account_over:
                exceeded = f"this account, whose keys share {account_limit} requests per minute"
        # Read back by RateLimitHeadersMiddleware; django-stubs' HttpRequest declares no such attribute.
        request._request.ratelimit = state  # type: ignore[attr-defined]
        if exceeded is not None:
            RATE_LIMITED.inc()
            raise Throttled(
                wait=reset_s,
                detail=f"Rate limit exceeded for {exceeded}; retry after the number of seconds in Retry-After.",
            )
        return True
