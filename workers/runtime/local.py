"""Serving models in-process with transformers: loading (cached per process, from a checkpoint directory or a
GGUF file), one continuous-batching engine per model, LoRA adapters, stop sequences and token streaming."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from copy import deepcopy
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import torch
from peft import PeftModel
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils.logging import disable_progress_bar

from workers.runtime.batching import BatchingEngine, EngineLimits, Submission, TokenLogprobs
from workers.runtime.checkpoints import pretrained_source
from workers.runtime.errors import InputTooLongError, InvalidMessagesError, ModelLoadError
from workers.runtime.prompts import build_prompt_ids
from workers.runtime.specs import (
    ChatMessage,
    GenerationResult,
    ModelSpec,
    Prompt,
    SamplingParams,
    StreamChunk,
    StructuredOutput,
    ToolSpec,
)
from workers.runtime.streaming import sendable_length
from workers.runtime.structured import ClosingTokens, Constraint, grammar_for, grammar_tokenizer

DEFAULT_MAX_ADAPTERS = 4
# Serving processes log to files: per-tensor GGUF conversion bars would fill them.
disable_progress_bar()
# A request whose engine produces nothing for this long is failed (the engine thread is stuck or dead).
ENGINE_SILENCE_TIMEOUT_S = 300.0


@cache
def load_tokenizer(*, path: str) -> PreTrainedTokenizerBase:
    """The tokenizer saved at ``path``, loaded once per process."""
    try:
        source = pretrained_source(path)
        return AutoTokenizer.from_pretrained(source.directory, **source.kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load tokenizer from {path!r}: {exc}") from exc


@dataclass
class LoadedModel:
    """A model in memory (a base, or a base with one LoRA adapter merged in) and the engine that serves it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    engine: BatchingEngine | None = field(default=None, repr=False)
    _grammar_tools: tuple[Any, ClosingTokens] | None = field(default=None, repr=False)
    _grammar_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def vocab_size(self) -> int:
        """Width of the model's logits (may exceed the tokenizer's length)."""
        return int(self.model.config.get_text_config().vocab_size)

    @property
    def eos_ids(self) -> set[int]:
        configured = self.model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, list) else [configured])
        return {i for i in (*ids, self.tokenizer.eos_token_id) if i is not None}

    def constraint(self, *, structured: StructuredOutput, tools: Sequence[ToolSpec], max_new_tokens: int) -> Constraint:
        """A fresh grammar state for one request (the tokenizer side is built on first use and kept)."""
        grammar = grammar_for(structured=structured, tools=tools)
        with self._grammar_lock:
            if self._grammar_tools is None:
                self._grammar_tools = (
                    grammar_tokenizer(self.tokenizer, vocab_size=self.vocab_size, eos_ids=self.eos_ids),
                    ClosingTokens(self.tokenizer, vocab_size=self.vocab_size, eos_ids=sorted(self.eos_ids)),
                )
        tokenizer, closers = self._grammar_tools
        return Constraint(tokenizer=tokenizer, grammar=grammar, closers=closers, max_new_tokens=max_new_tokens)


def _device(spec: ModelSpec) -> str:
    if spec.device != "auto":
        return spec.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _quantization_config(spec: ModelSpec) -> BitsAndBytesConfig | None:
    if spec.quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    if spec.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def _config(spec: ModelSpec) -> Any:
    source = pretrained_source(spec.path)
    config = AutoConfig.from_pretrained(source.directory, **source.kwargs)
    if spec.rope_scaling:
        scaling = dict(spec.rope_scaling)
        # Accept the legacy "type" key that model cards and older configs use.
        rope_type = scaling.pop("rope_type", scaling.pop("type", "default"))
        theta = (config.rope_parameters or {}).get("rope_theta", config.default_theta)
        config.rope_parameters = {"rope_theta": theta, **scaling, "rope_type": rope_type}
        config.standardize_rope_params()
        config.validate_rope()
    return config


def _load(spec: ModelSpec) -> LoadedModel:
    tokenizer = load_tokenizer(path=spec.path)
    source = pretrained_source(spec.path)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source.directory,
            config=_config(spec),
            dtype=spec.dtype if spec.dtype == "auto" else getattr(torch, spec.dtype),
            device_map={"": _device(spec)},
            quantization_config=_quantization_config(spec),
            **source.kwargs,
        )
    except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load model {spec.name!r} from {spec.path!r}: {exc}") from exc
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer)


def _merge_adapter(spec: ModelSpec, base: LoadedModel) -> LoadedModel:
    """A private copy of the base with the adapter folded into its weights. A quantised base cannot be copied or
    merged into: it is loaded afresh and keeps the adapter as LoRA layers."""
    quantized = getattr(base.model, "is_quantized", False)
    copy = _load(spec) if quantized else LoadedModel(model=deepcopy(base.model), tokenizer=base.tokenizer)
    try:
        model = PeftModel.from_pretrained(copy.model, spec.adapter_path)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load adapter from {spec.adapter_path!r}: {exc}") from exc
    return LoadedModel(model=model if quantized else model.merge_and_unload(), tokenizer=base.tokenizer)


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    positions = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    return min(positions) if positions else None


def _model_key(spec: ModelSpec) -> str:
    return json.dumps([spec.path, spec.dtype, spec.quantization, spec.rope_scaling, spec.device], sort_keys=True)


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
        return self._once(_model_key(spec), self._models, lambda: _load(spec))

    def _loaded(self, spec: ModelSpec) -> LoadedModel:
        base = self.load(spec=spec)
        if not spec.adapter_path:
            return base
        key = (_model_key(spec), spec.adapter_path)
        loaded = self._once(key, self._adapters, lambda: _merge_adapter(spec, base))
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
        key = _model_key(spec)
        with self._lock:
            return [adapter for base, adapter in self._adapters if base == key]

    def stream(
        self,
        *,
        spec: ModelSpec,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        tools: Sequence[ToolSpec] = (),
        prompt: Prompt | None = None,
    ) -> Iterator[StreamChunk]:
        """Generate an answer, yielding text as it is produced; the last chunk carries the full result.

        The prompt is ``messages`` in the model's chat format, or, when given, the raw ``prompt`` (text or token
        ids, for ``/v1/completions``). Loading, prompt and admission errors (``ModelLoadError``,
        ``InputTooLongError``, ``EngineBusyError``) are raised by this call, before any chunk. Text that might be
        the start of a stop sequence is held back until it is clear it is not one. ``max_new_tokens`` is capped by
        the spec's. Closing the iterator early cancels the request and frees its slot in the engine.
        """
        base = self.load(spec=spec)
        if prompt is None:
            prompt_ids = build_prompt_ids(
                family=spec.family,
                tokenizer=base.tokenizer,
                messages=messages,
                max_input_tokens=spec.max_input_tokens,
                tools=tools,
            ).input_ids
        else:
            prompt_ids = _raw_prompt_ids(base, prompt, max_input_tokens=spec.max_input_tokens)
        max_new_tokens = min(params.max_new_tokens or spec.max_new_tokens, spec.max_new_tokens)
        constraint = None
        if params.structured:
            constraint = base.constraint(structured=params.structured, tools=tools, max_new_tokens=max_new_tokens)
        submission = self.engine(spec=spec).submit(
            prompt_ids=prompt_ids, max_new_tokens=max_new_tokens, params=params, constraint=constraint
        )
        return _ClosingStream(self._chunks(base, submission, params, len(prompt_ids), max_new_tokens), submission)

    def _chunks(
        self,
        loaded: LoadedModel,
        submission: Submission,
        params: SamplingParams,
        prompt_tokens: int,
        max_new_tokens: int,
    ) -> Iterator[StreamChunk]:
        tokenizer, eos_ids = loaded.tokenizer, loaded.eos_ids
        generated: list[int] = []
        sent = 0
        scored: list[dict[str, Any]] = []  # log-probability entries already sent, formatted once
        try:
            for generated in submission.tokens(timeout_s=ENGINE_SILENCE_TIMEOUT_S):
                text = tokenizer.decode(generated, skip_special_tokens=True, clean_up_tokenization_spaces=False)
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

    def generate(
        self,
        *,
        spec: ModelSpec,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        tools: Sequence[ToolSpec] = (),
        prompt: Prompt | None = None,
    ) -> GenerationResult:
        """The whole answer: the same engine request as ``stream``, so both agree."""
        *_, last = self.stream(spec=spec, messages=messages, params=params, tools=tools, prompt=prompt)
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


class _ClosingStream(Iterator[StreamChunk]):
    """The chunks of one request; ``close`` cancels it even before the first chunk was asked for (closing a
    generator that never started runs none of its code)."""

    def __init__(self, chunks: Iterator[StreamChunk], submission: Submission) -> None:
        self._chunks = chunks
        self._submission = submission

    def __next__(self) -> StreamChunk:
        return next(self._chunks)

    def close(self) -> None:
        self._submission.cancel()
        self._chunks.close()  # type: ignore[attr-defined]


def _token_entry(tokenizer: PreTrainedTokenizerBase, token_id: int, logprob: float) -> dict[str, Any]:
    text = tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return {"token": text, "logprob": logprob, "bytes": list(text.encode())}


def _openai_logprobs(
    tokenizer: PreTrainedTokenizerBase, records: Sequence[TokenLogprobs]
) -> tuple[dict[str, Any], ...]:
    """Records in OpenAI's ``logprobs.content`` shape."""
    return tuple(
        {
            **_token_entry(tokenizer, r.token_id, r.logprob),
            "top_logprobs": [_token_entry(tokenizer, token_id, logprob) for token_id, logprob in r.top],
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
    text = tokenizer.decode(generated, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    stop_at = _first_stop(text, params.stop)
    ended = bool(generated) and generated[-1] in eos_ids
    hit_length = stop_at is None and not ended and len(generated) >= max_new_tokens
    return GenerationResult(
        text=text if stop_at is None else text[:stop_at],
        prompt_tokens=prompt_tokens,
        completion_tokens=len(generated),
        finish_reason="length" if hit_length else "stop",
    )
