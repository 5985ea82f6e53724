"""Serving models in-process with transformers: one continuous-batching engine per loaded model (``loading``),
LoRA adapters kept per model, stop sequences, token streaming and OpenAI-style log probabilities."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Generator, Sequence
from dataclasses import replace
from typing import Any

from transformers import (
    PreTrainedTokenizerBase,
)
from transformers.utils.logging import disable_progress_bar

from workers.runtime.batching import BatchingEngine, EngineLimits, Submission, TokenLogprobs
from workers.runtime.errors import InputTooLongError, InvalidMessagesError
from workers.runtime.loading import LoadedModel, load_model, merge_adapter, model_key
from workers.runtime.prompts import build_prompt_ids
from workers.runtime.specs import (
    ChunkStream,
    ClosingStream,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
    Prompt,
    SamplingParams,
    StreamChunk,
    StructuredOutput,
)
from workers.runtime.streaming import sendable_length
from workers.runtime.token_bytes import TokenBytes, token_bytes
from workers.runtime.tokenizer_text import decode_text

DEFAULT_MAX_ADAPTERS = 4
# Serving processes log to files: per-tensor GGUF conversion bars would fill them.
disable_progress_bar()
# A request whose engine produces nothing for this long is failed (the engine thread is stuck or dead).
ENGINE_SILENCE_TIMEOUT_S = 300.0


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    positions = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    return min(positions) if positions else None


class LocalRuntime:
    """Process-wide cache of loaded models and their continuous-batching engines; thread-safe.

    A base model has one engine that every request for it feeds. A LoRA adapter gets its own engine over a copy
    of the base with the adapter merged in (loaded on first use, at most ``max_adapters`` kept, least recently
    used evicted once idle): adapter requests batch with each other at full speed and never switch weights under
    the base's in-flight requests, at the cost of one model copy per hot adapter. At scale, vLLM's multi-LoRA
    serving (an upstream endpoint) batches every adapter over one base instead.
    """

    def __init__(self, *, max_adapters: int = DEFAULT_MAX_ADAPTERS, limits: EngineLimits | None = None) -> None:
        self.max_adapters = max_adapters
        self.limits = limits or EngineLimits()
        self._models: dict[str, LoadedModel] = {}
        self._adapters: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()
        self._loading: dict[object, threading.Lock] = {}
        self._lock = threading.Lock()

    def _once(self, key: object, cache: dict[Any, LoadedModel], build: Any) -> LoadedModel:
        with self._lock:
            if key in cache:
                return cache[key]
            loading = self._loading.setdefault(key, threading.Lock())
        # Per-model lock: loading one model (minutes for big ones) must not block requests for the others.
        with loading:
            with self._lock:
                if key in cache:
                    return cache[key]
            loaded = build()
            with self._lock:
                cache[key] = loaded
            return loaded

    def load(self, *, spec: ModelSpec) -> LoadedModel:
        """The base model for ``spec`` (without its adapter), loading it on first use."""
        return self._once(model_key(spec), self._models, lambda: load_model(spec))

    def _loaded(self, spec: ModelSpec) -> LoadedModel:
        base = self.load(spec=spec)
        if not spec.adapter_path:
            return base
        key = (model_key(spec), spec.adapter_path)
        loaded = self._once(key, self._adapters, lambda: merge_adapter(spec, base))
        with self._lock:
            self._adapters.move_to_end(key)
            idle = [k for k, v in self._adapters.items() if k != key and (v.engine is None or not v.engine.pending)]
            evicted = [self._adapters.pop(k) for k in idle[: max(0, len(self._adapters) - self.max_adapters)]]
        for old in evicted:
            if old.engine is not None:
                old.engine.close()
        return loaded

    def engine(self, *, spec: ModelSpec) -> BatchingEngine:
        """The engine serving ``spec`` (its adapter included), started on first use."""
        loaded = self._loaded(spec)
        if loaded.engine is None:
            with self._lock:
                if loaded.engine is None:
                    loaded.engine = BatchingEngine(
                        model=loaded.model,
                        eos_ids=loaded.eos_ids,
                        limits=self.limits,
                        name=spec.name,
                    )
        return loaded.engine

    def close(self) -> None:
        """Stop every engine (their loops end cleanly instead of being frozen mid-step at interpreter exit)."""
        with self._lock:
            loaded = [*self._models.values(), *self._adapters.values()]
        for model in loaded:
            if model.engine is not None:
                model.engine.close()

    def adapters_loaded(self, *, spec: ModelSpec) -> list[str]:
        """Adapter paths of ``spec``'s base held in memory, least recently used first."""
        key = model_key(spec)
        with self._lock:
            return [adapter for base, adapter in self._adapters if base == key]

    def stream(self, *, request: GenerationRequest) -> ChunkStream:
        """Generate an answer, yielding text as it is produced; the last chunk carries the full result.

        The prompt is the request's ``messages`` in the model's chat format, or, when given, its raw ``prompt``
        (text or token ids, for ``/v1/completions``). Loading, prompt and admission errors (``ModelLoadError``,
        ``InputTooLongError``, ``EngineBusyError``) are raised by this call, before any chunk. Text that might be
        the start of a stop sequence is held back until it is clear it is not one. ``max_new_tokens`` is capped by
        the spec's. Closing the iterator early cancels the request and frees its slot in the engine.
        """
        spec, params, tools = request.spec, request.params, request.tools
        base = self.load(spec=spec)
        if request.prompt is None:
            prompt_ids = build_prompt_ids(
                family=spec.family,
                tokenizer=base.tokenizer,
                messages=request.messages,
                max_input_tokens=spec.max_input_tokens,
                tools=tools,
            ).input_ids
        else:
            prompt_ids = _raw_prompt_ids(base, request.prompt, max_input_tokens=spec.max_input_tokens)
        max_new_tokens = min(params.max_new_tokens or spec.max_new_tokens, spec.max_new_tokens)
        constraint = None
        if params.structured:
            constraint = base.constraint(structured=params.structured, tools=tools, max_new_tokens=max_new_tokens)
        submission = self.engine(spec=spec).submit(
            prompt_ids=prompt_ids, max_new_tokens=max_new_tokens, params=params, constraint=constraint
        )
        chunks = self._chunks(base, submission, params, len(prompt_ids), max_new_tokens)
        return ClosingStream(chunks, on_unstarted_close=submission.cancel)

    def _chunks(
        self,
        loaded: LoadedModel,
        submission: Submission,
        params: SamplingParams,
        prompt_tokens: int,
        max_new_tokens: int,
    ) -> Generator[StreamChunk, None, None]:
        tokenizer, eos_ids = loaded.tokenizer, loaded.eos_ids
        generated: list[int] = []
        sent = 0
        scored: list[dict[str, Any]] = []  # log-probability entries already sent, formatted once
        try:
            for generated in submission.tokens(timeout_s=ENGINE_SILENCE_TIMEOUT_S):
                text = decode_text(tokenizer, generated, skip_special_tokens=True, clean_up_tokenization_spaces=False)
                stop_at = _first_stop(text, params.stop)
                if stop_at is not None:
                    submission.cancel()
                    visible = text[:stop_at]
                else:
                    # A trailing U+FFFD is a multi-byte character whose remaining bytes are still to come.
                    visible = text[: sendable_length(text=text, markers=params.stop)].rstrip("\ufffd")
                if len(visible) > sent:
                    entries = None
                    if params.logprobs:
                        entries = _openai_logprobs(tokenizer, submission.logprobs[len(scored) : len(generated)])
                        scored.extend(entries)
                    yield StreamChunk(delta=visible[sent:], logprobs=entries)
                    sent = len(visible)
                if stop_at is not None:
                    break
        finally:
            submission.cancel()
        result = _result(tokenizer, eos_ids, params, generated, prompt_tokens, max_new_tokens)
        rest = None
        if params.logprobs:
            rest = _openai_logprobs(tokenizer, submission.logprobs[len(scored) : len(generated)])
            result = replace(result, logprobs=(*scored, *rest))
        yield StreamChunk(delta=result.text[sent:], finished=True, result=result, logprobs=rest)

    def generate(self, *, request: GenerationRequest) -> GenerationResult:
        """The whole answer: the same engine request as ``stream``, so both agree."""
        *_, last = self.stream(request=request)
        if last.result is None:
            raise RuntimeError("a stream ended without its final result")
        return last.result


def _raw_prompt_ids(loaded: LoadedModel, prompt: Prompt, *, max_input_tokens: int) -> list[int]:
    if isinstance(prompt, str):
        ids = loaded.tokenizer.encode(prompt)
    else:
        if not prompt or any(not 0 <= token < loaded.vocab_size for token in prompt):
            raise InvalidMessagesError(f"token ids must be in [0, {loaded.vocab_size})", param="prompt")
        ids = list(prompt)
    if not ids:
        raise InvalidMessagesError("the prompt is empty", param="prompt")
    if len(ids) > max_input_tokens:
        raise InputTooLongError(prompt_tokens=len(ids), max_input_tokens=max_input_tokens, param="prompt")
    return ids


def _token_entry(pieces: TokenBytes, token_id: int, logprob: float) -> dict[str, Any]:
    piece = pieces.piece(token_id)
    return {"token": piece.text, "logprob": logprob, "bytes": list(piece.raw)}


def _openai_logprobs(
    tokenizer: PreTrainedTokenizerBase, records: Sequence[TokenLogprobs]
) -> tuple[dict[str, Any], ...]:
    """Records in OpenAI's ``logprobs.content`` shape: each token's own bytes, so that the bytes of consecutive
    tokens join into their text even where a character is split over tokens."""
    pieces = token_bytes(tokenizer)
    return tuple(
        {
            **_token_entry(pieces, r.token_id, r.logprob),
            "top_logprobs": [_token_entry(pieces, token_id, logprob) for token_id, logprob in r.top],
        }
        for r in records
    )


def _result(
    tokenizer: PreTrainedTokenizerBase,
    eos_ids: set[int],
    params: SamplingParams,
    generated: list[int],
    prompt_tokens: int,
    max_new_tokens: int,
) -> GenerationResult:
    text = decode_text(tokenizer, generated, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    stop_at = _first_stop(text, params.stop)
    ended = bool(generated) and generated[-1] in eos_ids
    hit_length = stop_at is None and not ended and len(generated) >= max_new_tokens
    if hit_length and _whole_json(params.structured, text):
        hit_length = False  # closed on the budget's last token: the grammar allowed only the end token next
    return GenerationResult(
        text=text if stop_at is None else text[:stop_at],
        prompt_tokens=prompt_tokens,
        completion_tokens=len(generated),
        finish_reason="length" if hit_length else "stop",
    )


def _whole_json(structured: StructuredOutput | None, text: str) -> bool:
    """Whether constrained JSON output is complete: an object or array that parses (a number could go on)."""
    if structured is None or structured.kind == "tool_calls":
        return False
    try:
        return isinstance(json.loads(text), dict | list)
    except ValueError:
        return False
