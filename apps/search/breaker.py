"""A circuit breaker on the shared cache: after ``threshold`` consecutive failures a provider is skipped for
``cooldown_s`` seconds (every process sees the same state when the cache is Redis)."""

from __future__ import annotations

from django.core.cache import cache


class CircuitBreaker:
    def __init__(self, name: str, *, threshold: int, cooldown_s: int) -> None:
        self._failures_key = f"breaker:{name}:failures"
        self._open_key = f"breaker:{name}:open"
        self.threshold = threshold
        self.cooldown_s = cooldown_s

    @property
    def is_open(self) -> bool:
        return bool(cache.get(self._open_key))

    def record_success(self) -> None:
        cache.delete(self._failures_key)

    def record_failure(self) -> None:
        cache.add(self._failures_key, 0, timeout=self.cooldown_s * 10)
        failures = cache.incr(self._failures_key)
        if failures >= self.threshold:
            cache.set(self._open_key, True, timeout=self.cooldown_s)
            cache.delete(self._failures_key)
