"""Search-augmented chat: retrieve for the last user turn and put the numbered sources into the prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractUser

from apps.chat.augment import Augmented
from apps.core.errors import ApiError
from apps.search.citations import numbered_sources, sources_block
from apps.search.services import web_search
from workers.runtime.specs import ChatMessage

DEFAULT_TOP_K = 5


def augment_chat_with_search(user: AbstractUser, messages: Sequence[ChatMessage], options: dict[str, Any]) -> Augmented:
    search = options.get("search")
    search = search if isinstance(search, dict) else {}
    top_k = search.get("top_k", DEFAULT_TOP_K)
    if not isinstance(top_k, int) or not 1 <= top_k <= 20:
        raise ApiError("search.top_k must be an integer in [1, 20].", param="search.top_k")
    providers = search.get("providers")
    if providers is not None and not (isinstance(providers, list) and all(isinstance(p, str) for p in providers)):
        raise ApiError("search.providers must be a list of provider names.", param="search.providers")
    query = next((m.content for m in reversed(messages) if m.role == "user"), "")
    results = web_search(user=user, query=query, top_k=top_k, providers=providers).results
    system = ChatMessage(role="system", content=sources_block(results))
    return Augmented(messages=[system, *messages], sources=numbered_sources(results))
