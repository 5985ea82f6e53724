from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser

from apps.search.breaker import CircuitBreaker
from apps.search.providers import ProviderError, SearchResult, configured_providers
from workers.errors import InvalidRequest, UpstreamFailed

if TYPE_CHECKING:
    from apps.plugins.filters import Filter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResponse:
    results: list[SearchResult]
    providers: list[str]


def search_provider_names(*, providers: list[str] | None, param: str = "providers") -> list[str]:
    """The providers a search asks for (default: the web when configured, else the local plugins)."""
    available = configured_providers()
    names = providers or (["web"] if "web" in available else ["plugins"])
    unknown = [name for name in names if name not in available]
    if unknown:
        raise InvalidRequest(
            f"Unknown or unconfigured search provider {unknown[0]!r}; available: {sorted(available)}.", param=param
        )
    return names


def unfilterable_providers(*, names: list[str]) -> list[str]:
    """Those of ``names`` that cannot take ``filters`` or ``score_threshold`` (the web)."""
    available = configured_providers()
    return [name for name in names if not available[name].filterable]


def web_search(
    *,
    user: AbstractUser,
    query: str,
    top_k: int,
    providers: list[str] | None = None,
    filters: Filter | None = None,
    score_threshold: float | None = None,
) -> SearchResponse:
    """Results from the named providers in order (default: the web when configured, else the local plugins),
    skipping a provider whose circuit is open; fails only when none answered. ``filters`` (parsed) and
    ``score_threshold`` need providers that can apply them."""
    available = configured_providers()
    names = search_provider_names(providers=providers)
    options: dict[str, Any] = {}
    if filters is not None or score_threshold is not None:
        unfit = unfilterable_providers(names=names)
        if unfit:
            raise InvalidRequest(
                f"Search provider {unfit[0]!r} cannot apply filters or score_threshold.",
                param="filters" if filters is not None else "score_threshold",
            )
        options = {"filters": filters, "score_threshold": score_threshold}
    results: list[SearchResult] = []
    answered: list[str] = []
    failures: list[str] = []
    for name in names:
        breaker = CircuitBreaker(
            f"search:{name}", threshold=settings.SEARCH_BREAKER_THRESHOLD, cooldown_s=settings.SEARCH_BREAKER_COOLDOWN_S
        )
        if breaker.is_open:
            failures.append(f"{name}: temporarily disabled after repeated failures")
            continue
        try:
            found = available[name].search(user=user, query=query, top_k=top_k, **options)
        except ProviderError as exc:
            logger.warning("search provider %s failed: %s", name, exc)
            breaker.record_failure()
            failures.append(f"{name}: {exc}")
            continue
        breaker.record_success()
        answered.append(name)
        results += found
    if not answered:
        raise UpstreamFailed(f"No search provider answered ({'; '.join(failures)}).", code="search_unavailable")
    return SearchResponse(results=results[: top_k * len(answered)], providers=answered)
