"""Loading models for in-process serving with transformers: tokenizers (cached per process), checkpoints from a
directory or a GGUF file, 4/8-bit quantization, RoPE scaling, and LoRA adapters merged into a private copy."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

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

from workers.runtime.batching import BatchingEngine
from workers.runtime.checkpoints import pretrained_source
from workers.runtime.errors import ModelLoadError
from workers.runtime.specs import ModelSpec, StructuredOutput, ToolSpec
from workers.runtime.structured import ClosingTokens, Constraint, grammar_for, grammar_tokenizer


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


def load_model(spec: ModelSpec) -> LoadedModel:
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


def merge_adapter(spec: ModelSpec, base: LoadedModel) -> LoadedModel:
    """A private copy of the base with the adapter folded into its weights. A quantised base cannot be copied or
    merged into: it is loaded afresh and keeps the adapter as LoRA layers."""
    quantized = getattr(base.model, "is_quantized", False)
    copy = load_model(spec) if quantized else LoadedModel(model=deepcopy(base.model), tokenizer=base.tokenizer)
    try:
        model = PeftModel.from_pretrained(copy.model, spec.adapter_path)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load adapter from {spec.adapter_path!r}: {exc}") from exc
    if quantized:
        # The LoRA layers stay; a PeftModel passes on to the model it wraps what it does not have itself.
        return LoadedModel(model=cast(PreTrainedModel, model), tokenizer=base.tokenizer)
    return LoadedModel(model=model.merge_and_unload(), tokenizer=base.tokenizer)


def model_key(spec: ModelSpec) -> str:
    return json.dumps([spec.path, spec.dtype, spec.quantization, spec.rope_scaling, spec.device], sort_keys=True)
