"""Fixtures for the fine-tuning worker tests: the shared instruct datasets and tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from tests.chat.vllm_fixtures import checkpoints, finetune_dir, served_base, vllm  # noqa: F401  (used by name)
from workers.finetune.conversation import Conversation
from workers.runtime.tiny import make_tiny_model

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
INSTRUCT = SHARED / "fixtures" / "instruct"


@pytest.fixture(scope="session")
def instruct_dir() -> Path:
    if not INSTRUCT.is_dir():
        pytest.skip(f"shared fixtures not found at {INSTRUCT}")
    return INSTRUCT


@pytest.fixture(scope="session")
def identity_pairs(instruct_dir: Path) -> list[tuple[str, str]]:
    """identity.json's (question, answer) pairs with its {{name}}/{{author}} placeholders filled in."""
    records = json.loads((instruct_dir / "identity.json").read_text(encoding="utf-8"))
    fill = {"{{name}}": "TigerBot", "{{author}}": "Tiger Research"}
    pairs = []
    for record in records:
        answer = record["output"]
        for placeholder, value in fill.items():
            answer = answer.replace(placeholder, value)
        pairs.append((record["instruction"], answer))
    return pairs


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-tokenizer"), family="tigerbot")


@pytest.fixture(scope="session")
def identity_examples(identity_pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Eight questions with eight different answers (several share long prefixes, so the model has to
    condition on the question)."""
    chosen: dict[str, str] = {}
    for question, answer in identity_pairs:
        if answer not in chosen.values() and len(chosen) < 8:
            chosen[question] = answer
    return list(chosen.items())


@pytest.fixture(scope="session")
def identity_base(tmp_path_factory: pytest.TempPathFactory, identity_examples: list[tuple[str, str]]) -> Path:
    """A tiny random Llama base (tigerbot family) whose tokenizer knows the identity texts.

    Its final norm is scaled up x10 to give it a pretrained model's logit scale: with the 0.02 init a frozen
    lm_head caps every logit near 1, so no adapter could make any answer likely (LoRA plateaus at loss ~5.5).
    """
    out = make_tiny_model(
        tmp_path_factory.mktemp("identity-base"),
        family="tigerbot",
        corpus_texts=[f"{question}\n{answer}" for question, answer in identity_examples],
    )
    model = LlamaForCausalLM.from_pretrained(out)
    with torch.no_grad():
        model.model.norm.weight.mul_(10)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def identity_train_file(tmp_path_factory: pytest.TempPathFactory, identity_examples: list[tuple[str, str]]) -> Path:
    path = tmp_path_factory.mktemp("identity-data") / "train.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for question, answer in identity_examples:
            messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            handle.write(json.dumps(Conversation(messages=messages).to_dict()) + "\n")
    return path
