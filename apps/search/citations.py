"""Numbered sources in a prompt (the answer's ``[n]`` markers are checked in ``apps.chat.augment``)."""

from __future__ import annotations

from typing import Any

from apps.search.providers import SearchResult


def sources_block(results: list[SearchResult]) -> str:
    lines = [f"[{i}] {r.title} ({r.url})\n{r.snippet}" for i, r in enumerate(results, start=1)]
    return (
        "Answer the question using the numbered sources below. Cite the sources you use with their number in "
        "square brackets, like [1]. If the sources do not contain the answer, say so.\n\n" + "\n\n".join(lines)
    )


def numbered_sources(results: list[SearchResult]) -> list[dict[str, Any]]:
    return [{"index": i, "title": r.title, "url": r.url, "snippet": r.snippet} for i, r in enumerate(results, start=1)]
