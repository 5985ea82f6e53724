"""Loading the base model for each fine-tuning method, and choosing the LoRA target modules.

* ``qlora``: 4-bit NF4 weights with double quantisation (BitsAndBytesConfig), made trainable with
  ``prepare_model_for_kbit_training``, plus LoRA. The adapter is saved on its own, in full precision, so it
  loads onto the non-quantised base for serving as well.
* ``lora``: the base in bf16 where the GPU supports it (fp32 otherwise, e.g. on CPU), plus LoRA.
* ``full``: every weight is trained in fp32 (bf16 autocast on capable GPUs) under DeepSpeed ZeRO.

The base is a checkpoint directory or a single ``.gguf`` file. A GGUF base is always dequantised on load (weights
left in GGUF blocks, as transformers does where it has a kernel, can neither be trained nor saved); for ``qlora``
it is first written out as a plain checkpoint in a temporary directory, because transformers cannot quantise
while reading a GGUF file. An adapter trained on a GGUF base records that file as its base; a full fine-tune
saves an ordinary HF checkpoint.

LoRA targets per family: Llama-style models (tigerbot, llama2-chat, and hf-template models, which mostly share
the naming) use ``LLAMA_TARGETS``; Baichuan 2 fuses q/k/v into ``W_pack`` and uses ``BAICHUAN2_TARGETS``. When
the model lacks any of the named modules (e.g. a tiny "baichuan2" test model that is a Llama underneath, or an
hf-template model with other names) peft's ``all-linear`` is used: every linear layer except the output head.
"""

from __future__ import annotations

import tempfile
from typing import Any

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    GgufConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from workers.finetune.config import TrainJobConfig
from workers.runtime.checkpoints import PretrainedSource, pretrained_source
from workers.runtime.specs import FAMILY_CONFIG_KEY, Family

LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BAICHUAN2_TARGETS = ("W_pack", "o_proj", "gate_proj", "up_proj", "down_proj")


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a checkpoint directory or a ``.gguf`` file."""
    source = pretrained_source(path)
    tokenizer = AutoTokenizer.from_pretrained(
        source.directory, local_files_only=True, trust_remote_code=False, **source.kwargs
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def lora_target_modules(*, model: nn.Module, family: Family) -> list[str] | str:
    wanted = BAICHUAN2_TARGETS if family == "baichuan2" else LLAMA_TARGETS
    present = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    return list(wanted) if present.issuperset(wanted) else "all-linear"


def _load_base(source: PretrainedSource, kwargs: dict[str, Any]) -> PreTrainedModel:
    if not source.gguf_file:
        return AutoModelForCausalLM.from_pretrained(source.directory, **kwargs)
    dequantised = {"gguf_file": source.gguf_file, "quantization_config": GgufConfig(dequantize=True)}
    if "quantization_config" not in kwargs:
        return AutoModelForCausalLM.from_pretrained(source.directory, **kwargs, **dequantised)
    plain = AutoModelForCausalLM.from_pretrained(
        source.directory, local_files_only=True, dtype=torch.bfloat16, **dequantised
    )
    with tempfile.TemporaryDirectory(prefix="gguf-base-") as directory:
        plain.save_pretrained(directory)
        del plain
        return AutoModelForCausalLM.from_pretrained(directory, **kwargs)


def load_model(*, config: TrainJobConfig, bf16: bool, device_index: int | None) -> nn.Module:
    """The model ready for the Trainer: a peft model for lora/qlora, the plain model for full."""
    hp = config.hyperparameters
    kwargs: dict[str, Any] = {"local_files_only": True}
    if config.method == "qlora":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float32,
        )
        # Quantised weights cannot be moved after loading: place them on this process's device now.
        kwargs["device_map"] = {"": device_index if device_index is not None else "cpu"}
    elif config.method == "lora":
        kwargs["dtype"] = torch.bfloat16 if bf16 else torch.float32
    else:
        kwargs["dtype"] = torch.float32
    model = _load_base(pretrained_source(config.base_model_path), kwargs)
    # Recorded so that a full fine-tune's config.json says which prompt format it was trained in.
    setattr(model.config, FAMILY_CONFIG_KEY, config.family)
    if config.method == "full":
        if hp.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        return model
    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=hp.gradient_checkpointing)
    elif hp.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    lora = LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=lora_target_modules(model=model, family=config.family),
        bias="none",
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    # peft records the directory the base came from, which for a GGUF base names no checkpoint: record the
    # path serving loads the base from (the .gguf file itself).
    peft_model.peft_config["default"].base_model_name_or_path = config.base_model_path
    return peft_model
