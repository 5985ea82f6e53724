"""Serving models in-process with transformers: loading (cached per process), LoRA adapters on a shared base,
sampling, stop sequences and token streaming."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from queue import Queue
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    GenerationConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
    set_seed,
)
from transformers.generation.streamers import BaseStreamer

from workers.runtime.errors import ModelLoadError
from workers.runtime.prompts import build_prompt_ids
from workers.runtime.specs import ChatMessage, GenerationResult, ModelSpec, SamplingParams, StreamChunk, ToolSpec
from workers.runtime.streaming import sendable_length

DEFAULT_MAX_ADAPTERS = 4


@cache
def load_tokenizer(*, path: str) -> PreTrainedTokenizerBase:
    """The tokenizer saved at ``path``, loaded once per process."""
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load tokenizer from {path!r}: {exc}") from exc


@dataclass
class LoadedModel:
    """A base model in memory. ``lock`` serialises generation, because the active adapter is model-wide state."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    lock: threading.Lock = field(default_factory=threading.Lock)
    adapters: OrderedDict[str, str] = field(default_factory=OrderedDict)
    """adapter path -> adapter name inside ``model``, least recently used first."""

    @property
    def eos_ids(self) -> set[int]:
        configured = self.model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, list) else [configured])
        return {i for i in (*ids, self.tokenizer.eos_token_id) if i is not None}


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
    config = AutoConfig.from_pretrained(spec.path)
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
    try:
        model = AutoModelForCausalLM.from_pretrained(
            spec.path,
            config=_config(spec),
            dtype=spec.dtype if spec.dtype == "auto" else getattr(torch, spec.dtype),
            device_map={"": _device(spec)},
            quantization_config=_quantization_config(spec),
        )
    except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load model {spec.name!r} from {spec.path!r}: {exc}") from exc
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer)


class _TokenQueue(BaseStreamer):
    """Hands generated token ids from the generation thread to the consumer; ``None`` marks the end."""

    def __init__(self) -> None:
        self.queue: Queue[list[int] | None] = Queue()
        self._prompt_skipped = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_skipped:
            self._prompt_skipped = True
            return
        self.queue.put(value.reshape(-1).tolist())

    def end(self) -> None:
        self.queue.put(None)


class _Cancelled(StoppingCriteria):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    positions = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    return min(positions) if positions else None


class LocalRuntime:
    """Process-wide cache of loaded models; thread-safe. One base model serves all of its LoRA adapters."""

    def __init__(self, *, max_adapters: int = DEFAULT_MAX_ADAPTERS) -> None:
        self.max_adapters = max_adapters
        self._models: dict[str, LoadedModel] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def load(self, *, spec: ModelSpec) -> LoadedModel:
        """The base model for ``spec`` (adapters are attached per request), loading it on first use."""
        key = json.dumps([spec.path, spec.dtype, spec.quantization, spec.rope_scaling, spec.device], sort_keys=True)
        with self._lock:
            if key in self._models:
                return self._models[key]
            loading = self._loading.setdefault(key, threading.Lock())
        # Per-model lock: loading one model (minutes for big ones) must not block requests for the others.
        with loading:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            loaded = _load(spec)
            with self._lock:
                self._models[key] = loaded
            return loaded

    def _activate_adapter(self, loaded: LoadedModel, adapter_path: str) -> None:
        """Make ``adapter_path`` (or the bare base when empty) active; call with ``loaded.lock`` held."""
        model = loaded.model
        if not adapter_path:
            if loaded.adapters:
                model.disable_adapters()
            return
        if adapter_path not in loaded.adapters:
            name = f"adapter_{hashlib.sha256(adapter_path.encode()).hexdigest()[:16]}"
            try:
                model.load_adapter(adapter_path, adapter_name=name)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise ModelLoadError(f"cannot load adapter from {adapter_path!r}: {exc}") from exc
            loaded.adapters[adapter_path] = name
            if len(loaded.adapters) > self.max_adapters:
                _, evicted = loaded.adapters.popitem(last=False)
                model.delete_adapter(evicted)
        loaded.adapters.move_to_end(adapter_path)
        model.set_adapter(loaded.adapters[adapter_path])
        model.enable_adapters()

    def stream(
        self,
        *,
        spec: ModelSpec,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        tools: Sequence[ToolSpec] = (),
    ) -> Iterator[StreamChunk]:
        """Generate an answer, yielding text as it is produced; the last chunk carries the full result.

        Loading and prompt errors (``ModelLoadError``, ``InputTooLongError``...) are raised by this call, before
        any chunk. Text that might be the start of a stop sequence is held back until it is clear it is not one.
        ``max_new_tokens`` is capped by the spec's. Closing the iterator early stops generation.
        """
        loaded, prompt_ids, max_new_tokens = self._prepare(spec, messages, params, tools)
        return self._chunks(loaded, spec.adapter_path, prompt_ids, params, max_new_tokens)

    def _prepare(
        self, spec: ModelSpec, messages: Sequence[ChatMessage], params: SamplingParams, tools: Sequence[ToolSpec]
    ) -> tuple[LoadedModel, list[int], int]:
        loaded = self.load(spec=spec)
        prompt = build_prompt_ids(
            family=spec.family,
            tokenizer=loaded.tokenizer,
            messages=messages,
            max_input_tokens=spec.max_input_tokens,
            tools=tools,
        )
        max_new_tokens = min(params.max_new_tokens or spec.max_new_tokens, spec.max_new_tokens)
        return loaded, prompt.input_ids, max_new_tokens

    def _run_generate(
        self,
        loaded: LoadedModel,
        adapter_path: str,
        prompt_ids: list[int],
        params: SamplingParams,
        max_new_tokens: int,
        **extra: Any,
    ) -> Any:
        """``model.generate`` under the model's lock, with ``adapter_path`` active; call with no lock held."""
        with loaded.lock:
            self._activate_adapter(loaded, adapter_path)
            if params.seed is not None:
                set_seed(params.seed)
            return loaded.model.generate(
                input_ids=torch.tensor([prompt_ids], device=loaded.model.device),
                attention_mask=torch.ones(1, len(prompt_ids), device=loaded.model.device),
                generation_config=_generation_config(loaded, params, max_new_tokens),
                tokenizer=loaded.tokenizer,
                **extra,
            )

    def _chunks(
        self,
        loaded: LoadedModel,
        adapter_path: str,
        prompt_ids: list[int],
        params: SamplingParams,
        max_new_tokens: int,
    ) -> Iterator[StreamChunk]:
        tokenizer = loaded.tokenizer
        streamer, cancel = _TokenQueue(), threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._run_generate(
                    loaded, adapter_path, prompt_ids, params, max_new_tokens,
                    stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]), streamer=streamer,
                )
            except BaseException as exc:  # re-raised in the consumer's thread
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, name="generate", daemon=True)
        thread.start()
        generated: list[int] = []
        sent = 0
        try:
            while (tokens := streamer.queue.get()) is not None:
                generated += tokens
                text = tokenizer.decode(generated, skip_special_tokens=True, clean_up_tokenization_spaces=False)
                stop_at = _first_stop(text, params.stop)
                if stop_at is None:
                    # A trailing U+FFFD is a multi-byte character whose remaining bytes are still to come.
                    visible = text[: sendable_length(text=text, markers=params.stop)].rstrip("\ufffd")
                else:
                    visible = text[:stop_at]
                    cancel.set()  # in case the stop criterion, which works on token strings, missed it
                if len(visible) > sent:
                    yield StreamChunk(delta=visible[sent:])
                    sent = len(visible)
        finally:
            cancel.set()
            thread.join()
        if failure:
            raise failure[0]
        result = _result(loaded, params, generated, len(prompt_ids), max_new_tokens)
        yield StreamChunk(delta=result.text[sent:], finished=True, result=result)

    def generate(
        self,
        *,
        spec: ModelSpec,
        messages: Sequence[ChatMessage],
        params: SamplingParams,
        tools: Sequence[ToolSpec] = (),
    ) -> GenerationResult:
        """Generate a whole answer: the same ``model.generate`` call as ``stream`` (so both agree), in this thread
        and without a streamer, which would cost a thread hand-off and a decode per token."""
        loaded, prompt_ids, max_new_tokens = self._prepare(spec, messages, params, tools)
        output = self._run_generate(loaded, spec.adapter_path, prompt_ids, params, max_new_tokens)
        generated = output[0, len(prompt_ids):].tolist()
        return _result(loaded, params, generated, len(prompt_ids), max_new_tokens)


def _generation_config(loaded: LoadedModel, params: SamplingParams, max_new_tokens: int) -> GenerationConfig:
    config = copy.deepcopy(loaded.model.generation_config)
    sampling: dict[str, Any] = (
        # float(): transformers rejects ints (e.g. a JSON `1`) for these.
        {
            "do_sample": True,
            "temperature": float(params.temperature),
            "top_p": float(params.top_p),
            "top_k": params.top_k,
        }
        if params.temperature > 0
        else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    )
    config.update(
        **sampling,
        max_new_tokens=max_new_tokens,
        repetition_penalty=float(params.repetition_penalty),
        stop_strings=list(params.stop) or None,
        use_cache=True,
        num_beams=1,
        pad_token_id=loaded.tokenizer.pad_token_id
        if loaded.tokenizer.pad_token_id is not None
        else loaded.tokenizer.eos_token_id,
    )
    return config


def _result(
    loaded: LoadedModel,
    params: SamplingParams,
    generated: list[int],
    prompt_tokens: int,
    max_new_tokens: int,
) -> GenerationResult:
    text = loaded.tokenizer.decode(generated, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    stop_at = _first_stop(text, params.stop)
    ended = bool(generated) and generated[-1] in loaded.eos_ids
    hit_length = stop_at is None and not ended and len(generated) >= max_new_tokens
    return GenerationResult(
        text=text if stop_at is None else text[:stop_at],
        prompt_tokens=prompt_tokens,
        completion_tokens=len(generated),
        finish_reason="length" if hit_length else "stop",
    )
