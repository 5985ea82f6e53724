"""Search providers: a web search engine behind a configured endpoint, and the local rethink plugins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx
from django.conf import settings
from django.contrib.auth.models import AbstractUser

from workers.errors import DomainError

if TYPE_CHECKING:
    from apps.plugins.filters import Filter


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str
    source: str


class ProviderError(Exception):
    """The provider could not answer (network, status, unreadable body)."""


class SearchProvider(Protocol):
    name: str
    filterable: bool  # takes ``filters`` and ``score_threshold`` in ``search``

    def search(self, *, user: AbstractUser, query: str, top_k: int) -> list[SearchResult]: ...


class SearxngProvider:
    """SearxNG's JSON API (``/search?q=…&format=json``; enable the json format in its settings.yml)."""

    name = "web"
    filterable = False

    def __init__(self, *, base_url: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def search(self, *, user: AbstractUser, query: str, top_k: int) -> list[SearchResult]:
        try:
            response = httpx.get(
                f"{self.base_url}/search", params={"q": query, "format": "json"}, timeout=self.timeout_s
            )
            response.raise_for_status()
            results = response.json()["results"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise ProviderError(f"SearxNG at {self.base_url}: {type(exc).__name__}: {exc}") from exc
        return [
            SearchResult(
                title=str(item.get("title") or ""),
                url=str(item.get("url") or ""),
                snippet=str(item.get("content") or ""),
                source=str(item.get("engine") or "searxng"),
            )
            for item in results[:top_k]
            if isinstance(item, dict) and item.get("url")
        ]


class PluginProvider:
    """A rethink plugin (the built-in ``wiki`` by default) as a search engine."""

    name = "plugins"
    filterable = True

    def __init__(self, *, plugin: str, snippet_chars: int = 300) -> None:
        self.plugin = plugin
        self.snippet_chars = snippet_chars

    def search(
        self,
        *,
        user: AbstractUser,
        query: str,
        top_k: int,
        filters: Filter | None = None,
        score_threshold: float | None = None,
    ) -> list[SearchResult]:
        """``filters`` (parsed) and ``score_threshold`` (checked) as for ``/v1/plugin/search``."""

        from apps.plugins.selectors import plugin_search

        try:
            hits = plugin_search(
                user=user,
                plugin=self.plugin,
                query=query,
                top_k=top_k,
                filters=filters,
                score_threshold=score_threshold,
            )
        except DomainError as exc:
            raise ProviderError(f"plugin {self.plugin!r}: {exc.message}") from exc
        return [
            SearchResult(
                title=hit["title"],
                url=hit.get("url") or "",
                snippet=hit["text"][: self.snippet_chars],
                source=f"plugin:{self.plugin}",
            )
            for hit in hits
        ]


def configured_providers() -> dict[str, SearchProvider]:
    providers: dict[str, SearchProvider] = {}
    if settings.SEARXNG_URL:
        providers["web"] = SearxngProvider(base_url=settings.SEARXNG_URL, timeout_s=settings.SEARCH_TIMEOUT_S)
    providers["plugins"] = PluginProvider(plugin=settings.SEARCH_LOCAL_PLUGIN)
    return providers
