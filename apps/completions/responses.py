"""``text_completion`` bodies and stream chunks in OpenAI's legacy shape."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from apps.chat.dialects import interleave
from apps.core.sse import DONE
from workers.runtime.specs import GenerationResult, Prompt, StreamChunk


def _legacy_logprobs(entries: Sequence[dict[str, Any]] | None, *, offset: int) -> dict[str, Any] | None:
    """The chat shape (``[{token, logprob, top_logprobs}]``) as the legacy one: parallel lists, and text offsets
    counted from ``offset``."""
    if entries is None:
        return None
    offsets, position = [], offset
    for entry in entries:
        offsets.append(position)
        position += len(entry["token"])
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
        "text_offset": offsets,
    }


def total_usage(results: Sequence[GenerationResult], *, n: int) -> GenerationResult:
    """Token counts of all choices: each prompt counted once (its ``n`` choices share it)."""
    return replace(
        results[0],
        prompt_tokens=sum(r.prompt_tokens for r in results[::n]),
        completion_tokens=sum(r.completion_tokens for r in results),
    )


def _usage(usage: GenerationResult) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def completion_body(
    *, model: str, prompts: Sequence[Prompt], results: Sequence[GenerationResult], n: int, echo: bool
) -> dict[str, Any]:
    """Choice ``i * n + j`` is the ``j``-th choice of prompt ``i``, as in OpenAI's API."""
    choices = []
    for index, result in enumerate(results):
        prefix = prompts[index // n] if echo else ""
        if not isinstance(prefix, str):
            raise TypeError("echo needs text prompts")  # token-id prompts are refused before generation
        choices.append(
            {
                "text": prefix + result.text,
                "index": index,
                "finish_reason": result.finish_reason,
                "logprobs": _legacy_logprobs(result.logprobs, offset=len(prefix)),
            }
        )
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _usage(total_usage(results, n=n)),
    }


def completion_stream(
    *,
    model: str,
    prompts: Sequence[Prompt],
    choices: list[Iterator[StreamChunk]],
    n: int,
    echo: bool,
    include_usage: bool,
) -> Iterator[Any]:
    base = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()), "model": model}

    def event(index: int, text: str, finish: str | None = None, logprobs: Any = None) -> dict[str, Any]:
        body = {**base, "choices": [{"text": text, "index": index, "finish_reason": finish, "logprobs": logprobs}]}
        return {**body, "usage": None} if include_usage else body

    if echo:
        for index in range(len(choices)):
            yield event(index, str(prompts[index // n]))
    offsets = [len(str(prompts[i // n])) if echo else 0 for i in range(len(choices))]
    results: list[GenerationResult | None] = [None] * len(choices)
    for index, chunk in interleave(choices):
        if chunk.delta or chunk.logprobs:
            yield event(index, chunk.delta, logprobs=_legacy_logprobs(chunk.logprobs, offset=offsets[index]))
            offsets[index] += len(chunk.delta)
        if chunk.finished and chunk.result is not None:
            results[index] = chunk.result
            yield event(index, "", chunk.result.finish_reason)
    finished = [r for r in results if r is not None]
    if include_usage and len(finished) == len(results):
        yield {**base, "choices": [], "usage": _usage(total_usage(finished, n=n))}
    yield DONE
