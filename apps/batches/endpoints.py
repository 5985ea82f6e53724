"""Which endpoints a batch line may call, and how one line runs: the same code path as the HTTP endpoint, minus
HTTP. Adding an endpoint is one entry in ``BATCH_LINE_RUNNERS``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractUser

from apps.chat.completion import chat_completion_create
from apps.completions.services import text_completion_create
from apps.embeddings.responses import embeddings_response


@dataclass(frozen=True)
class LineAnswer:
    """A line's response body (exactly what the endpoint would have answered) and what it cost."""

    body: dict[str, Any]
    model: str
    prompt_tokens: int
    completion_tokens: int


LineRunner = Callable[..., LineAnswer]  # called as runner(user=..., body=...); raises DomainError for bad input


def chat_completions_line(*, user: AbstractUser, body: dict[str, Any]) -> LineAnswer:
    completion = chat_completion_create(user=user, body=body)
    return LineAnswer(
        body=completion.body,
        model=completion.model,
        prompt_tokens=completion.result.prompt_tokens,
        completion_tokens=completion.result.completion_tokens,
    )


def embeddings_line(*, user: AbstractUser, body: dict[str, Any]) -> LineAnswer:
    response, prompt_tokens, model = embeddings_response(user=user, body=body)
    return LineAnswer(body=response, model=model, prompt_tokens=prompt_tokens, completion_tokens=0)


def completions_line(*, user: AbstractUser, body: dict[str, Any]) -> LineAnswer:
    completion = text_completion_create(user=user, body=body)
    return LineAnswer(
        body=completion.body,
        model=completion.model,
        prompt_tokens=completion.usage.prompt_tokens,
        completion_tokens=completion.usage.completion_tokens,
    )


BATCH_LINE_RUNNERS: dict[str, LineRunner] = {
    "/v1/chat/completions": chat_completions_line,
    "/v1/completions": completions_line,
    "/v1/embeddings": embeddings_line,
}


def batch_endpoints() -> tuple[str, ...]:
    return tuple(BATCH_LINE_RUNNERS)


def batch_line_runner(url: str) -> LineRunner:
    return BATCH_LINE_RUNNERS[url]
