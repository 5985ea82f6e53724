"""Training examples from a prepared JSONL file, tokenised exactly as serving renders prompts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from workers.finetune.prepare import read_conversations
from workers.runtime.errors import InputTooLongError
from workers.runtime.prompts import IGNORE_INDEX, build_training_example
from workers.runtime.specs import Family


class TokenizedDataset(Dataset):
    def __init__(self, examples: Sequence[dict[str, list[int]]]) -> None:
        self._examples = list(examples)

    def __len__(self) -> int:
        return len(self._examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self._examples[index]


def load_examples(
    *, path: str | Path, family: Family, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> tuple[TokenizedDataset, int]:
    """The file's conversations as input_ids/labels (loss on assistant answers only), and how many were
    skipped because not one answer token fits in ``max_length``."""
    examples, skipped = [], 0
    for conversation in read_conversations(path):
        try:
            example = build_training_example(
                family=family,
                tokenizer=tokenizer,
                messages=conversation.chat_messages(),
                max_length=max_length,
                tools=conversation.tool_specs(),
            )
        except InputTooLongError:
            skipped += 1
            continue
        examples.append({"input_ids": example.input_ids, "labels": example.labels})
    return TokenizedDataset(examples), skipped


class PadCollator:
    """Right-pads a batch to its longest example; padding is masked out of attention and loss."""

    def __init__(self, pad_token_id: int) -> None:
        self._pad = pad_token_id

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        width = max(len(feature["input_ids"]) for feature in features)
        input_ids, labels, attention = [], [], []
        for feature in features:
            padding = width - len(feature["input_ids"])
            input_ids.append(feature["input_ids"] + [self._pad] * padding)
            labels.append(feature["labels"] + [IGNORE_INDEX] * padding)
            attention.append([1] * len(feature["input_ids"]) + [0] * padding)
        return {
            "input_ids": torch.tensor(input_ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(attention),
        }
