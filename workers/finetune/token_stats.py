"""Token statistics of prepared examples, measured with the base model's tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from workers.finetune.conversation import Conversation
from workers.finetune.report import TokenStats
from workers.runtime.checkpoints import pretrained_source
from workers.runtime.prompts import build_training_example
from workers.runtime.specs import Family, infer_family

# Large enough that build_training_example never drops or cuts a round: we want the full length.
_UNLIMITED = 1 << 30


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a checkpoint directory or a ``.gguf`` file."""
    source = pretrained_source(path)
    return AutoTokenizer.from_pretrained(source.directory, local_files_only=True, **source.kwargs)


def example_lengths(
    *, conversations: Sequence[Conversation], tokenizer: PreTrainedTokenizerBase, family: Family | None
) -> list[int]:
    """Length of each example as trained: rendered in the family's prompt format when ``family`` is known,
    else the plain token count of all its text (no template tokens)."""
    if family is None:
        texts = ["\n".join([c.prompt_text(), c.response_text()]) for c in conversations]
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return [
        len(
            build_training_example(
                family=family,
                tokenizer=tokenizer,
                messages=c.chat_messages(),
                max_length=_UNLIMITED,
                tools=c.tool_specs(),
            ).input_ids
        )
        for c in conversations
    ]


def token_stats(
    *,
    conversations: Sequence[Conversation],
    tokenizer_path: str | Path,
    family: Family | None,
    max_length: int,
) -> TokenStats:
    tokenizer = load_tokenizer(tokenizer_path)
    family = family or infer_family(path=tokenizer_path)
    lengths = np.array(example_lengths(conversations=conversations, tokenizer=tokenizer, family=family))
    if not len(lengths):
        return TokenStats(count=0, min=0, mean=0.0, p50=0.0, p95=0.0, max=0, max_length=max_length, over_max_length=0)
    return TokenStats(
        count=len(lengths),
        min=int(lengths.min()),
        mean=round(float(lengths.mean()), 2),
        p50=round(float(np.percentile(lengths, 50)), 2),
        p95=round(float(np.percentile(lengths, 95)), 2),
        max=int(lengths.max()),
        max_length=max_length,
        over_max_length=int((lengths > max_length).sum()),
    )
