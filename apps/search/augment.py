"""Search-augmented chat: retrieve for the last user turn (made standalone first when earlier turns exist) and put
the numbered sources into the prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractUser

from apps.chat.augment import Augmented
from apps.plugins.filters import filters_parse
from apps.plugins.selectors import score_threshold_param
from apps.search.citations import numbered_sources, sources_block
from apps.search.rewrite import standalone_query
from apps.search.services import search_provider_names, unfilterable_providers, web_search
from workers.errors import InvalidRequest
from workers.runtime.specs import ChatMessage, ModelSpec

DEFAULT_TOP_K = 5


def _search_query(*, spec: ModelSpec, messages: Sequence[ChatMessage]) -> tuple[str, str]:
    """(the query to search with, how it was made: "last_turn", or the rewrite's "model" or "fallback")."""
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    if last is None:
        return "", "last_turn"
    question = messages[last].content
    history = [m for m in messages[:last] if m.role in ("user", "assistant") and m.content.strip()]
    if not history or not question.strip():
        return question, "last_turn"
    standalone = standalone_query(spec=spec, history=history, question=question)
    return standalone.text, standalone.method


def augment_chat_with_search(
    *,
    user: AbstractUser,
    messages: Sequence[ChatMessage],
    options: dict[str, Any],
    spec: ModelSpec,
) -> Augmented:
    search = options.get("search")
    search = search if isinstance(search, dict) else {}
    top_k = search.get("top_k", DEFAULT_TOP_K)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 20:
        raise InvalidRequest("search.top_k must be an integer in [1, 20].", param="search.top_k")
    providers = search.get("providers")
    if providers is not None and not (isinstance(providers, list) and all(isinstance(p, str) for p in providers)):
        raise InvalidRequest("search.providers must be a list of provider names.", param="search.providers")
    names = search_provider_names(providers=providers, param="search.providers")
    filters = filters_parse(value=search.get("filters"), param="search.filters")
    threshold = score_threshold_param(value=search.get("score_threshold"), param="search.score_threshold")
    for param, value in (("search.filters", filters), ("search.score_threshold", threshold)):
        unfit = unfilterable_providers(names=names) if value is not None else []
        if unfit:
            raise InvalidRequest(
                f"{param} works only with the local `plugins` search provider, not {unfit[0]!r}; "
                'ask for it with search.providers: ["plugins"].',
                param=param,
            )
    query, method = _search_query(spec=spec, messages=messages)
    if not query.strip():
        raise InvalidRequest("Search-augmented chat needs a user message with text to search for.", param="messages")
    results = web_search(
        user=user, query=query, top_k=top_k, providers=names, filters=filters, score_threshold=threshold
    ).results
    system = ChatMessage(role="system", content=sources_block(results))
    return Augmented(
        messages=[system, *messages],
        sources=numbered_sources(results),
        response_fields={"search_query": query, "search_query_method": method},
    )
