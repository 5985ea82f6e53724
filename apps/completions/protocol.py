"""Response bodies of OpenAI's legacy ``/v1/completions`` (a ``text_completion`` and its stream chunks), as
pydantic models that build the bodies and document them, field for field as the ``openai`` package's types."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from apps.chat.protocol import OpenAIObject, ResponseObject

CompletionFinishReason = Literal["stop", "length", "content_filter"]


class Logprobs(OpenAIObject):
    tokens: list[str] | None = None
    token_logprobs: list[float] | None = None
    top_logprobs: list[dict[str, float]] | None = None
    text_offset: list[int] | None = None


class CompletionChoice(OpenAIObject):
    text: str
    index: int
    finish_reason: CompletionFinishReason
    logprobs: Logprobs | None


class Completion(ResponseObject):
    object: Literal["text_completion"]
    choices: list[CompletionChoice]


class CompletionChunkChoice(OpenAIObject):
    text: str
    index: int
    finish_reason: CompletionFinishReason | None = Field(description="null until the choice's last chunk.")
    logprobs: Logprobs | None


class CompletionChunk(ResponseObject):
    """One streamed ``text_completion`` event; the usage chunk (``stream_options.include_usage``) has no choices."""

    object: Literal["text_completion"]
    choices: list[CompletionChunkChoice]
