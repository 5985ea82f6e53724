"""Requests refused by the per-key rate limit (HTTP 429); the engine's own refusals (503) are counted by
``workers.runtime.metrics``."""

from __future__ import annotations

from prometheus_client import Counter

RATE_LIMITED = Counter(
    "tigerplatform_rate_limited_requests",
    "Requests refused by the per-key rate limit (HTTP 429).",
)
