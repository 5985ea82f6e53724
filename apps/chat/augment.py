"""Search-augmented chat (``internet: true``) through the augmenter ``settings.CHAT_SEARCH_AUGMENTER`` names (the
search app's); sources are ``{index, title, url, snippet}`` and answers cite them with ``[n]`` markers. The
augmenter gets the request's chat model, for work such as making a follow-up question standalone before searching."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractUser

from apps.chat.registry import search_augmenter
from workers.errors import InvalidRequest
from workers.runtime.specs import ChatMessage, ModelSpec


@dataclass(frozen=True)
class Augmented:
    messages: list[ChatMessage]
    sources: list[dict[str, object]]
    # Sent beside ``sources`` in the answer (e.g. ``search_query``, the query actually searched with).
    response_fields: dict[str, object] = field(default_factory=dict)


def augment_with_search(
    *, user: AbstractUser, messages: Sequence[ChatMessage], options: dict[str, object], spec: ModelSpec
) -> Augmented:
    augmenter = search_augmenter()
    if augmenter is None:
        raise InvalidRequest(
            "Search-augmented chat is not available on this platform.", code="search_unavailable", param="internet"
        )
    return augmenter(user=user, messages=messages, options=options, spec=spec)


_MARKER = re.compile(r"\[(\d{1,3})\]")


def keep_valid_markers(text: str, *, source_count: int) -> str:
    """Drop ``[n]`` markers that point at no source (a model can invent them)."""
    return _MARKER.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= source_count else "", text)


def url_citations(text: str, sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI ``annotations`` of type ``url_citation`` for each in-range marker."""
    annotations = []
    for match in _MARKER.finditer(text):
        index = int(match.group(1))
        if 1 <= index <= len(sources):
            source = sources[index - 1]
            annotations.append(
                {
                    "type": "url_citation",
                    "url_citation": {
                        "start_index": match.start(),
                        "end_index": match.end(),
                        "url": source["url"],
                        "title": source["title"],
                    },
                }
            )
    return annotations
