"""Tokenizer calls that give one text, typed as such: transformers annotates ``decode`` and
``apply_chat_template`` with every shape they can return (lists of texts, token ids, encodings)."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedTokenizerBase


def decode_text(tokenizer: PreTrainedTokenizerBase, token_ids: list[int], **options: Any) -> str:
    """``tokenizer.decode`` of one sequence of ids (``options`` are decode's own)."""
    return _text(tokenizer.decode(token_ids, **options))


def chat_template_text(
    tokenizer: PreTrainedTokenizerBase, chat: list[dict[str, str]], *, add_generation_prompt: bool
) -> str:
    """The chat rendered by the tokenizer's template, untokenized."""
    return _text(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=add_generation_prompt))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"the tokenizer gave {type(value).__name__} where one text was due")
    return value
