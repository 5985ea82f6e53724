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
from workers.runtime.specs import GenerationResult


@dataclass(frozen=True)
class LineAnswer:
    """A line's response body (exactly what the endpoint would have answered) and what it cost."""

    body: dict[str, Any]
    model: str
    prompt_tokens: int
    completion_tokens: int

    @classmethod
    def generated(cls, *, body: dict[str, Any], model: str, usage: GenerationResult) -> LineAnswer:
        """The answer of an endpoint that generates: ``usage`` holds the token counts of all its choices."""
        return cls(body=body, model=model, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)


LineRunner = Callable[..., LineAnswer]  # called as runner(user=..., body=...); raises DomainError for bad input


def chat_completions_line(*, user: AbstractUser, body: dict[str, Any]) -> LineAnswer:
    completion = chat_completion_create(user=user, body=body)
    return LineAnswer.generated(body=completion.body, model=completion.model, usage=completion.result)


def embeddings_line(*, user: AbstractUser, body: dict[str, Any]) -> LineAnswer:
    response, prompt_tokens, model = embeddings_response(user=user, body=body)
    return LineAnswer(body=response, model=model, prompt_tokens=prompt_tokens, completion_tokens=0)


def completions_line(*, user: AbstractUser, body: dict[str, Any]) -> LineAnswer:
    completion = text_completion_create(user=user, body=body)
    return LineAnswer.generated(body=completion.body, model=completion.model, usage=completion.usage)


BATCH_LINE_RUNNERS: dict[str, LineRunner] = {
    "/v1/chat/completions": chat_completions_line,
    "/v1/completions": completions_line,
    "/v1/embeddings": embeddings_line,
}


def batch_endpoints() -> tuple[str, ...]:
    return tuple(BATCH_LINE_RUNNERS)


def batch_line_runner(url: str) -> LineRunner:
    return BATCH_LINE_RUNNERS[url]
