"""``text_completion`` bodies and stream chunks in OpenAI's legacy shape."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from apps.chat.dialects import interleave, stream_chunk_base
from apps.chat.protocol import Usage
from apps.completions.protocol import (
    Completion,
    CompletionChoice,
    CompletionChunk,
    CompletionChunkChoice,
    CompletionFinishReason,
    Logprobs,
)
from apps.core.sse import DONE
from workers.runtime.specs import GenerationResult, Prompt, StreamChunk


class _TextOffsets:
    """Where each token starts in a choice's text, in characters, counted on the tokens' bytes as a UTF-8 decoder
    reads them: a token that continues a character split over tokens starts where that character does, and a
    stray byte is one (replacement) character. Kept across a stream's chunks."""

    def __init__(self, *, start: int) -> None:
        self._position = start
        self._pending = 0  # continuation bytes the current character still expects

    def advance(self, entries: Sequence[dict[str, Any]]) -> list[int]:
        offsets = []
        for entry in entries:
            raw = bytes(entry["bytes"]) if entry.get("bytes") is not None else entry["token"].encode()
            continues = self._pending > 0 and bool(raw) and _is_continuation(raw[0])
            offsets.append(self._position - 1 if continues else self._position)
            for byte in raw:
                if self._pending > 0 and _is_continuation(byte):
                    self._pending -= 1
                else:
                    self._position += 1
                    self._pending = _continuations(byte)
        return offsets


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def _continuations(lead: int) -> int:
    """How many continuation bytes follow ``lead`` in UTF-8 (0 for ASCII and for bytes that lead nothing)."""
    if 0xC2 <= lead <= 0xDF:
        return 1
    if 0xE0 <= lead <= 0xEF:
        return 2
    if 0xF0 <= lead <= 0xF4:
        return 3
    return 0


def _legacy_logprobs(entries: Sequence[dict[str, Any]] | None, *, offsets: _TextOffsets) -> Logprobs | None:
    """The chat shape (``[{token, logprob, bytes, top_logprobs}]``) as the legacy one: parallel lists, and text
    offsets from ``offsets`` (which it advances)."""
    if entries is None:
        return None
    return Logprobs(
        tokens=[e["token"] for e in entries],
        token_logprobs=[e["logprob"] for e in entries],
        top_logprobs=[{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
        text_offset=offsets.advance(entries),
    )


def _finish_reason(result: GenerationResult) -> CompletionFinishReason:
    """A raw-prompt completion is asked for no tools, so it stops or runs out of tokens."""
    return "length" if result.finish_reason == "length" else "stop"


def total_usage(results: Sequence[GenerationResult], *, n: int) -> GenerationResult:
    """Token counts of all choices: each prompt counted once (its ``n`` choices share it)."""
    return replace(
        results[0],
        prompt_tokens=sum(r.prompt_tokens for r in results[::n]),
        completion_tokens=sum(r.completion_tokens for r in results),
    )


def _usage(usage: GenerationResult) -> Usage:
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
    )


def completion_body(
    *, model: str, prompts: Sequence[Prompt], results: Sequence[GenerationResult], n: int, echo: bool
) -> dict[str, Any]:
    """Choice ``i * n + j`` is the ``j``-th choice of prompt ``i``, as in OpenAI's API."""
    choices = []
    for index, result in enumerate(results):
        prefix = str(prompts[index // n]) if echo else ""  # echo comes with text prompts only (the serializer)
        choices.append(
            CompletionChoice(
                text=prefix + result.text,
                index=index,
                finish_reason=_finish_reason(result),
                logprobs=_legacy_logprobs(result.logprobs, offsets=_TextOffsets(start=len(prefix))),
            )
        )
    return Completion(
        id=f"cmpl-{uuid.uuid4().hex}",
        object="text_completion",
        created=int(time.time()),
        model=model,
        choices=choices,
        usage=_usage(total_usage(results, n=n)),
    ).dump()


def completion_stream(
    *,
    model: str,
    prompts: Sequence[Prompt],
    choices: list[Iterator[StreamChunk]],
    n: int,
    echo: bool,
    include_usage: bool,
) -> Iterator[Any]:
    base = stream_chunk_base(id_prefix="cmpl", object_type="text_completion", model=model, include_usage=include_usage)

    def event(
        index: int, text: str, finish: CompletionFinishReason | None = None, logprobs: Logprobs | None = None
    ) -> dict[str, Any]:
        choice = CompletionChunkChoice(text=text, index=index, finish_reason=finish, logprobs=logprobs)
        return CompletionChunk(**base, choices=[choice]).dump()

    if echo:
        for index in range(len(choices)):
            yield event(index, str(prompts[index // n]))
    offsets = [_TextOffsets(start=len(str(prompts[i // n])) if echo else 0) for i in range(len(choices))]
    results: list[GenerationResult | None] = [None] * len(choices)
    for index, chunk in interleave(choices):
        if chunk.delta or chunk.logprobs:
            # Counted on the tokens, not the text: a chunk's tokens may end inside a character its text holds back.
            yield event(index, chunk.delta, logprobs=_legacy_logprobs(chunk.logprobs, offsets=offsets[index]))
        if chunk.finished and chunk.result is not None:
            results[index] = chunk.result
            yield event(index, "", _finish_reason(chunk.result))
    finished = [r for r in results if r is not None]
    if include_usage and len(finished) == len(results):
        yield CompletionChunk(**{**base, "usage": _usage(total_usage(finished, n=n))}, choices=[]).dump()
    yield DONE
