"""Fine-tuning a base model that is a single GGUF file: tokenizer, token statistics, config checks and model
loading read it like a checkpoint directory; LoRA/QLoRA adapters record it as their base and load onto it; a
full fine-tune saves an ordinary checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM, PreTrainedTokenizerBase

from workers.finetune.config import ConfigError, Hyperparameters, TrainJobConfig
from workers.finetune.conversation import Conversation
from workers.finetune.launcher import launch_training
from workers.finetune.modeling import load_model, load_tokenizer
from workers.finetune.prepare import prepare_dataset
from workers.runtime.checkpoints import pretrained_source
from workers.runtime.prompts import build_prompt_ids
from workers.runtime.specs import FAMILY_CONFIG_KEY, ChatMessage
from workers.runtime.tiny import make_tiny_model

from .gguf_helpers import write_tiny_gguf

MESSAGES = [
    ChatMessage(role="system", content="You are a helpful assistant."),
    ChatMessage(role="user", content="What is the weather like in Paris today? 今天北京的天气怎么样？"),
    ChatMessage(role="assistant", content="It is sunny and warm in Paris, about 25 degrees."),
    ChatMessage(role="user", content='<tool_call>{"name": "get_weather"}</tool_call>'),
]


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny hf-template checkpoint directory and the same model written as one GGUF file."""
    checkpoint = make_tiny_model(tmp_path_factory.mktemp("tiny-hf"), family="hf-template")
    gguf_file = write_tiny_gguf(checkpoint, tmp_path_factory.mktemp("tiny-gguf") / "tiny.F32.gguf")
    return checkpoint, gguf_file


def _config(base: Path, train_file: Path, out: Path, method: str, **hyperparameters: Any) -> TrainJobConfig:
    settings: dict[str, Any] = {
        "n_epochs": 1000,
        "max_steps": 60,
        "learning_rate": 5e-3,
        "lr_scheduler": "constant_with_warmup",
        "warmup_ratio": 0.0,
        "batch_size": 8,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "logging_steps": 5,
        "save_steps": 60,
        "eval": False,
    }
    return TrainJobConfig(
        base_model_path=str(base),
        family="hf-template",
        method=method,  # type: ignore[arg-type]
        output_dir=str(out),
        train_file=str(train_file),
        hyperparameters=Hyperparameters(**(settings | hyperparameters)),
    )


def test_the_tokenizer_of_a_gguf_file_encodes_like_its_checkpoint(tiny_pair: tuple[Path, Path]) -> None:
    checkpoint, gguf_file = tiny_pair
    from_dir, from_gguf = load_tokenizer(str(checkpoint)), load_tokenizer(str(gguf_file))
    prompts = [
        build_prompt_ids(family="hf-template", tokenizer=tokenizer, messages=MESSAGES, max_input_tokens=512)
        for tokenizer in (from_dir, from_gguf)
    ]
    assert prompts[0] == prompts[1]
    assert (from_gguf.eos_token, from_gguf.pad_token) == (from_dir.eos_token, from_dir.pad_token)


def test_token_statistics_read_a_gguf_tokenizer(tmp_path: Path, tiny_pair: tuple[Path, Path]) -> None:
    checkpoint, gguf_file = tiny_pair
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(
            json.dumps({"instruction": f"Question {i} about Paris?", "output": f"Answer {i}."}) + "\n" for i in range(5)
        )
    )
    stats = [
        prepare_dataset(
            path=data, out_dir=tmp_path / name, max_length=64, tokenizer_path=path, family="hf-template"
        ).token_stats
        for name, path in (("d", checkpoint), ("g", gguf_file))
    ]
    assert stats[0] is not None and stats[0] == stats[1]
    # A GGUF file records no prompt family: without one the plain token count is measured.
    plain = prepare_dataset(path=data, out_dir=tmp_path / "p", max_length=64, tokenizer_path=gguf_file).token_stats
    assert plain is not None and plain.mean < stats[1].mean


def test_a_job_on_a_gguf_base_validates(tmp_path: Path, tiny_pair: tuple[Path, Path]) -> None:
    _, gguf_file = tiny_pair
    train = tmp_path / "train.jsonl"
    train.write_text("{}\n")
    _config(gguf_file, train, tmp_path / "out", "lora").validate()
    with pytest.raises(ConfigError) as caught:
        _config(gguf_file.with_name("missing.gguf"), train, tmp_path / "out", "lora").validate()
    assert caught.value.field == "base_model_path" and "GGUF file not found" in caught.value.message


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_gguf_base_loads_dequantised_with_its_checkpoint_weights(
    tmp_path: Path, tiny_pair: tuple[Path, Path], method: str
) -> None:
    checkpoint, gguf_file = tiny_pair
    model = load_model(
        config=_config(gguf_file, tmp_path / "t.jsonl", tmp_path / "out", method), bf16=False, device_index=None
    )
    reference = LlamaForCausalLM.from_pretrained(checkpoint)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, reference(input_ids=ids).logits)  # LoRA's B starts at 0
    assert not getattr(model, "is_quantized", False)
    if method == "full":
        assert "quantization_config" not in model.config.to_dict()
        assert getattr(model.config, FAMILY_CONFIG_KEY) == "hf-template"
    else:
        assert model.peft_config["default"].base_model_name_or_path == str(gguf_file)
        assert any(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)


# --- Training (slow) ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def identity_gguf(tmp_path_factory: pytest.TempPathFactory, identity_examples: list[tuple[str, str]]) -> Path:
    """The identity base of conftest as an hf-template model in a GGUF file (norm scaled up for the same reason)."""
    checkpoint = make_tiny_model(
        tmp_path_factory.mktemp("identity-hf"),
        family="hf-template",
        corpus_texts=[f"{q}\n{a}" for q, a in identity_examples],
    )
    model = LlamaForCausalLM.from_pretrained(checkpoint)
    with torch.no_grad():
        model.model.norm.weight.mul_(10)
    model.save_pretrained(checkpoint)
    return write_tiny_gguf(checkpoint, tmp_path_factory.mktemp("identity-gguf") / "identity.F32.gguf")


@pytest.fixture(scope="session")
def identity_chat_file(tmp_path_factory: pytest.TempPathFactory, identity_examples: list[tuple[str, str]]) -> Path:
    path = tmp_path_factory.mktemp("identity-chat") / "train.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                Conversation(messages=[{"role": "user", "content": q}, {"role": "assistant", "content": a}]).to_dict()
            )
            + "\n"
            for q, a in identity_examples
        ),
        encoding="utf-8",
    )
    return path


def _gguf_model(gguf_file: Path) -> Any:
    source = pretrained_source(gguf_file)
    return AutoModelForCausalLM.from_pretrained(source.directory, **source.kwargs)


def _correct(model: Any, tokenizer: PreTrainedTokenizerBase, examples: list[tuple[str, str]]) -> int:
    model.eval()
    correct = 0
    for question, answer in examples:
        prompt = build_prompt_ids(
            family="hf-template",
            tokenizer=tokenizer,
            messages=[ChatMessage(role="user", content=question)],
            max_input_tokens=256,
        ).input_ids
        output = model.generate(
            input_ids=torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt)),
            max_new_tokens=48,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        correct += tokenizer.decode(output[0, len(prompt) :], skip_special_tokens=True).strip() == answer
    return correct


def _train(config: TrainJobConfig) -> None:
    outcome = launch_training(config=config, on_event=lambda event: None, cancel_check=lambda: False, timeout_s=600)
    assert outcome.status == "succeeded", outcome


@pytest.mark.slow
@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_an_adapter_trained_on_a_gguf_base_learns_and_loads_onto_that_file(
    tmp_path: Path,
    identity_gguf: Path,
    identity_chat_file: Path,
    identity_examples: list[tuple[str, str]],
    method: str,
) -> None:
    out = tmp_path / method
    _train(_config(identity_gguf, identity_chat_file, out, method))
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(identity_gguf)
    tokenizer = AutoTokenizer.from_pretrained(out)
    base = _gguf_model(identity_gguf)
    assert _correct(base, tokenizer, identity_examples) == 0
    tuned = PeftModel.from_pretrained(base, out)
    assert _correct(tuned, tokenizer, identity_examples) == len(identity_examples)


@pytest.mark.slow
def test_a_full_fine_tune_of_a_gguf_base_is_an_ordinary_checkpoint(
    tmp_path: Path, identity_gguf: Path, identity_chat_file: Path, identity_examples: list[tuple[str, str]]
) -> None:
    out = tmp_path / "full"
    _train(_config(identity_gguf, identity_chat_file, out, "full", max_steps=50, learning_rate=1e-3))
    saved = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in saved and saved[FAMILY_CONFIG_KEY] == "hf-template"
    assert not list(out.glob("*.gguf"))
    model = LlamaForCausalLM.from_pretrained(out)
    assert _correct(model, AutoTokenizer.from_pretrained(out), identity_examples) == len(identity_examples)
