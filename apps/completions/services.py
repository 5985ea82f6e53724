"""Text completions (OpenAI's legacy ``/v1/completions``): a raw prompt continued by a chat model, with no chat
format around it. Shared by the view and the Batch API's ``/v1/completions`` lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractUser

from apps.chat.dialects import sampling_from
from apps.chat.selectors import ServedModel, chat_model_get
from apps.chat.services import chat_stream_choices, final_result
from apps.completions import responses
from apps.completions.serializers import CompletionRequestSerializer
from workers.errors import InvalidRequest
from workers.runtime.specs import ChunkStream, GenerationRequest, GenerationResult, Prompt, SamplingParams


@dataclass(frozen=True)
class PreparedCompletion:
    served: ServedModel
    prompts: list[Prompt]
    params: SamplingParams
    n: int
    echo: bool
    stream: bool
    include_usage: bool


@dataclass(frozen=True)
class TextCompletion:
    body: dict[str, Any]
    usage: GenerationResult  # token counts of every choice together
    model: str


def text_completion_prepare(*, user: AbstractUser, body: Any) -> PreparedCompletion:
    """Check ``body`` and resolve its model; raises ``DomainError`` for anything the caller got wrong."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_request")
    serializer = CompletionRequestSerializer(data=body)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    served = chat_model_get(user=user, model=data["model"])
    if data["max_tokens"] > served.spec.max_new_tokens:
        raise InvalidRequest(
            f"max_tokens may be at most {served.spec.max_new_tokens} for {served.id}.", param="max_tokens"
        )
    sampling = sampling_from(data, default_temperature=1.0)
    if data.get("logprobs") is not None:
        sampling.update(logprobs=True, top_logprobs=data["logprobs"])
    return PreparedCompletion(
        served=served,
        prompts=data["prompt"],
        params=SamplingParams(**sampling, max_new_tokens=data["max_tokens"]),
        n=data["n"],
        echo=data["echo"],
        stream=data["stream"],
        include_usage=bool((data.get("stream_options") or {}).get("include_usage")),
    )


def text_completion_run(*, prepared: PreparedCompletion) -> TextCompletion:
    results = [final_result(chunks) for chunks in text_completion_stream(prepared=prepared)]
    body = responses.completion_body(
        model=prepared.served.id, prompts=prepared.prompts, results=results, n=prepared.n, echo=prepared.echo
    )
    return TextCompletion(body=body, usage=responses.total_usage(results, n=prepared.n), model=prepared.served.id)


def text_completion_stream(*, prepared: PreparedCompletion) -> list[ChunkStream]:
    """Every choice of every prompt, opened (submitted to the engine) before any is read."""
    return [
        chunks
        for prompt in prepared.prompts
        for chunks in chat_stream_choices(
            request=GenerationRequest(spec=prepared.served.spec, messages=[], params=prepared.params, prompt=prompt),
            n=prepared.n,
        )
    ]


def text_completion_create(*, user: AbstractUser, body: Any) -> TextCompletion:
    """Prepare and run, for callers that cannot stream (batch lines)."""
    prepared = text_completion_prepare(user=user, body=body)
    if prepared.stream:
        raise InvalidRequest("stream is not supported here.", param="stream")
    return text_completion_run(prepared=prepared)
