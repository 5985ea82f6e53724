from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractUser

from apps.core.errors import ApiError
from apps.search.breaker import CircuitBreaker
from apps.search.providers import ProviderError, SearchResult, configured_providers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResponse:
    results: list[SearchResult]
    providers: list[str]


def web_search(*, user: AbstractUser, query: str, top_k: int, providers: list[str] | None = None) -> SearchResponse:
    """Results from the named providers in order (default: the web when configured, else the local plugins),
    skipping a provider whose circuit is open; fails only when none answered."""
    available = configured_providers()
    names = providers or (["web"] if "web" in available else ["plugins"])
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ApiError(f"Unknown or unconfigured search provider {unknown[0]!r}; available: {sorted(available)}.",
                       param="providers")
    results: list[SearchResult] = []
    answered: list[str] = []
    failures: list[str] = []
    for name in names:
        breaker = CircuitBreaker(f"search:{name}", threshold=settings.SEARCH_BREAKER_THRESHOLD,
                                 cooldown_s=settings.SEARCH_BREAKER_COOLDOWN_S)
        if breaker.is_open:
            failures.append(f"{name}: temporarily disabled after repeated failures")
            continue
        try:
            found = available[name].search(user=user, query=query, top_k=top_k)
        except ProviderError as exc:
            logger.warning("search provider %s failed: %s", name, exc)
            breaker.record_failure()
            failures.append(f"{name}: {exc}")
            continue
        breaker.record_success()
        answered.append(name)
        results += found
    if not answered:
        raise ApiError(f"No search provider answered ({'; '.join(failures)}).", code="search_unavailable",
                       status_code=502)
    return SearchResponse(results=results[: top_k * len(answered)], providers=answered)
