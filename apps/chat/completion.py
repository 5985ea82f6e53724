"""One chat completion from a request body, without HTTP: the view and the Batch API's ``/v1/chat/completions``
lines both go through here, so a batch line answers exactly as the endpoint would."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from django.contrib.auth.models import AbstractUser

from apps.chat import dialects
from apps.chat.augment import augment_with_search, keep_valid_markers, url_citations
from apps.chat.selectors import ServedModel, chat_model_get
from apps.chat.services import chat_complete_choices
from workers.errors import InvalidRequest
from workers.runtime.specs import GenerationRequest, GenerationResult


@dataclass(frozen=True)
class PreparedChat:
    """A checked request, ready to run: the model resolved and the search step (if asked for) done."""

    chat: dialects.ChatRequest
    served: ServedModel
    request: GenerationRequest  # what the model is asked: the served spec, the (augmented) messages, the tools
    sources: list[dict[str, Any]] | None
    search_fields: dict[str, Any] = field(default_factory=dict)  # beside sources in the answer (search_query …)


@dataclass(frozen=True)
class ChatCompletion:
    body: dict[str, Any]
    result: GenerationResult  # the first choice, with the token counts of all choices (for usage)
    model: str


def chat_request_prepare(*, user: AbstractUser, body: Any) -> PreparedChat:
    """Parse and check ``body`` (either dialect); raises ``DomainError`` for anything the caller got wrong."""
    dialect = dialects.detect_dialect(body)
    chat = dialects.parse_openai(body) if dialect == "openai" else dialects.parse_tigerbot(body)
    served = chat_model_get(user=user, model=chat.model)
    params = chat.params_for(served.spec)
    messages, sources, search_fields = chat.messages, None, {}
    if chat.internet:
        options = chat.extras if dialect == "openai" else {"search": {}}
        augmented = augment_with_search(user=user, messages=messages, options=options, spec=served.spec)
        messages, sources, search_fields = augmented.messages, augmented.sources, augmented.response_fields
    request = GenerationRequest(spec=served.spec, messages=messages, params=params, tools=chat.tools)
    return PreparedChat(chat=chat, served=served, request=request, sources=sources, search_fields=search_fields)


def chat_completion_run(*, prepared: PreparedChat) -> ChatCompletion:
    """The non-streaming answer, rendered in the request's dialect."""
    chat, served, sources = prepared.chat, prepared.served, prepared.sources
    results = chat_complete_choices(request=prepared.request, n=chat.n)
    annotations = None
    if sources is not None:
        results = [replace(r, text=keep_valid_markers(r.text, source_count=len(sources))) for r in results]
        annotations = [url_citations(r.text, sources) for r in results]
    if chat.dialect == "openai":
        body = dialects.openai_completion(
            model=served.id,
            results=results,
            sources=sources,
            annotations=annotations,
            search_fields=prepared.search_fields,
        )
    else:
        body = dialects.tigerbot_completion(result=results[0], sources=sources, search_fields=prepared.search_fields)
    return ChatCompletion(body=body, result=dialects.combined_usage(results), model=served.id)


def chat_completion_create(*, user: AbstractUser, body: Any) -> ChatCompletion:
    """``chat_request_prepare`` then ``chat_completion_run``, for callers that cannot stream (batch lines)."""
    prepared = chat_request_prepare(user=user, body=body)
    if prepared.chat.stream:
        raise InvalidRequest("stream is not supported here.", param="stream")
    return chat_completion_run(prepared=prepared)
