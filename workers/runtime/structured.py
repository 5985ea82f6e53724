"""Structured outputs by constrained decoding, with llguidance.

A request's ``StructuredOutput`` becomes an llguidance grammar: a JSON Schema (``{"type": "object"}`` for JSON
mode) or, when a tool call is required, a Lark grammar of one or more ``<tool_call>{"name", "arguments"}</tool_call>``
lines whose JSON is the tools' own schemas (the format ``workers.runtime.tools`` parses). At every decoding step
the request's ``Constraint`` masks the logits to the tokens that keep the output valid, so even a 135M model
returns schema-valid JSON, and a tool call whenever one is required.

Why llguidance: it builds the token mask lazily per step (no per-schema ahead-of-time compilation, so a new schema
costs about a millisecond and continuous batching never stalls on one request's compile), its JSON Schema support
is broad, it is one dependency-free wheel, and vLLM and SGLang accept it as a backend, so the same schemas behave
the same upstream.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import llguidance
import llguidance.hf
import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from workers.runtime.errors import InvalidConstraintError
from workers.runtime.specs import StructuredOutput, ToolSpec
from workers.runtime.tokenizer_text import decode_text
from workers.runtime.tools import TOOL_CALL_CLOSE, TOOL_CALL_OPEN

# Compact JSON with single spaces after separators: free whitespace lets a small model wander into endless
# newlines instead of closing its object.
JSON_LAYOUT: dict[str, Any] = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _with_layout(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "x-guidance": {**JSON_LAYOUT, **schema.get("x-guidance", {})}}


# The integers every JSON reader takes exactly (RFC 8259, section 6: IEEE 754 doubles).
SAFE_INTEGER = 2**53 - 1


def _closed(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` wherever an object lists ``properties`` and says nothing
    about others (as xgrammar's strict mode does in vLLM), and integers without bounds kept to the interoperable
    range: otherwise a small model invents keys, or repeats a digit, until the token budget runs out."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    if closed.get("type") == "integer":
        closed.setdefault("minimum", -SAFE_INTEGER)
        closed.setdefault("maximum", SAFE_INTEGER)
    return closed


def _tool_call_schema(tools: Sequence[ToolSpec]) -> dict[str, Any]:
    calls = [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "arguments"],
            "properties": {"name": {"const": tool.name}, "arguments": _closed(tool.parameters) or ANY_OBJECT},
        }
        for tool in tools
    ]
    return _with_layout(calls[0] if len(calls) == 1 else {"anyOf": calls})


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    reference = schema.get("$ref") if isinstance(schema, dict) else None
    if isinstance(reference, str) and reference.startswith("#/"):
        target: Any = root
        for part in reference[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target
    return schema


def shortest_tokens(schema: Any, *, root: dict[str, Any] | None = None, depth: int = 0) -> int:
    """A rough count of the tokens of the shortest JSON valid against ``schema`` (its required members, minimal
    arrays and strings): how much budget closing an answer may need."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if not isinstance(schema, dict) or depth > 8 or "enum" in schema or "const" in schema:
        return 3
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return min(shortest_tokens(option, root=root, depth=depth + 1) for option in schema[key])
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return 2 + sum(
            4 + len(name) // 4 + shortest_tokens(properties.get(name, {}), root=root, depth=depth + 1)
            for name in schema.get("required") or ()
        )
    if kind == "array":
        item = shortest_tokens(schema.get("items", {}), root=root, depth=depth + 1)
        return 2 + int(schema.get("minItems") or 0) * (1 + item)
    if kind == "string":
        return 2 + int(schema.get("minLength") or 0) // 3
    return 2


@dataclass(frozen=True)
class Grammar:
    """An llguidance grammar, and the rough token count of its shortest output (see ``shortest_tokens``)."""

    text: str
    shortest_tokens: int


def grammar_for(*, structured: StructuredOutput, tools: Sequence[ToolSpec] = ()) -> Grammar:
    """The llguidance grammar for ``structured``; raises ``InvalidConstraintError`` for one that cannot be built."""
    if structured.kind == "tool_calls":
        if not tools:
            raise InvalidConstraintError("a tool call is required but no tools were given", param="tool_choice")
        more = ' ("\\n" call)*' if structured.parallel_tool_calls else ""
        lark = (
            f"start: call{more}\n"
            f"call: {json.dumps(TOOL_CALL_OPEN)} %json {json.dumps(_tool_call_schema(tools))} "
            f"{json.dumps(TOOL_CALL_CLOSE)}\n"
        )
        grammar, param = llguidance.LLMatcher.grammar_from_lark(lark), "tools"
        shortest = 8 + min(shortest_tokens(tool.parameters or ANY_OBJECT) for tool in tools)
    else:
        schema = _closed(structured.schema) if structured.kind == "json_schema" else ANY_OBJECT
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(_with_layout(schema or ANY_OBJECT))
        except ValueError as exc:
            raise InvalidConstraintError(f"invalid JSON schema: {exc}", param="response_format") from exc
        param = "response_format"
        shortest = shortest_tokens(schema or ANY_OBJECT)
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        raise InvalidConstraintError(f"the schema cannot be enforced: {messages[0]}", param=param)
    return Grammar(text=grammar, shortest_tokens=shortest)


def grammar_tokenizer(tokenizer: PreTrainedTokenizerBase, *, vocab_size: int, eos_ids: Iterable[int]) -> Any:
    """llguidance's view of a (fast) tokenizer; building one takes about half a second, so callers keep it."""
    try:
        # llguidance annotates a fast tokenizer; a slow one raises the ValueError handled below.
        return llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=sorted(eos_ids))  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidConstraintError(
            f"structured output needs a fast tokenizer: {exc}", param="response_format"
        ) from exc


class ClosingTokens:
    """Each token's text, and token classes by how they end an answer: end-of-sequence tokens, and tokens that
    start (after spaces) with ``"``, with ``]`` or ``}`` (and hold no comma), and with ``,``. Built once per
    tokenizer."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, *, vocab_size: int, eos_ids: Sequence[int]) -> None:
        self.texts = [decode_text(tokenizer, [i]) for i in range(min(vocab_size, len(tokenizer)))]
        self.texts += [""] * (vocab_size - len(self.texts))
        firsts = [text.lstrip()[:1] for text in self.texts]

        def starting_with(chars: str) -> torch.Tensor:
            return torch.tensor([first != "" and first in chars for first in firsts], dtype=torch.bool)

        # A token such as ' "",' or '}, {' ends one value and commits to another: the last thing to pick.
        commaless = torch.tensor(["," not in text for text in self.texts], dtype=torch.bool)
        self.quote, self.comma = starting_with('"'), starting_with(",")
        self.quote_alone, self.close_alone = self.quote & commaless, starting_with("]}") & commaless
        self.end = torch.zeros(vocab_size, dtype=torch.bool)
        self.end[[i for i in eos_ids if i < vocab_size]] = True


def closing_reserve(*, max_new_tokens: int, shortest_tokens: int) -> int:
    """How many of the last tokens of the budget are kept for closing the JSON (see ``Constraint``): a quarter of
    the budget (8 to 64 tokens), or more when even the shortest valid output is long."""
    return max(min(64, max(8, max_new_tokens // 4)), shortest_tokens * 3 // 2 + 8)


class Constraint:
    """One request's grammar state. The engine thread calls ``allowed`` once per step with every token generated
    so far; it feeds the new ones to the matcher and returns the mask of tokens that may come next.

    A small model can loop inside an unbounded array or string until the token budget cuts it off, leaving JSON
    that does not parse. So once fewer than ``closing_reserve`` tokens of the budget remain, the mask keeps only
    the allowed tokens of the most closing class that has any (``ClosingTokens``): inside a string, tokens that
    end it; outside, the end of the answer when the grammar allows it, then tokens that close an array or object,
    then ones that start a (short) string, then commas, and only then tokens that end a string and go on to the
    next member.
    Strings end, arrays and objects close, and the answer finishes as valid JSON instead of being cut."""

    def __init__(
        self,
        *,
        tokenizer: Any,
        grammar: Grammar,
        closers: ClosingTokens | None = None,
        max_new_tokens: int | None = None,
    ) -> None:
        self._matcher = llguidance.LLMatcher(tokenizer, grammar.text)
        if self._matcher.is_error():
            raise InvalidConstraintError(
                f"the schema cannot be enforced: {self._matcher.get_error()}", param="response_format"
            )
        self._consumed = 0
        self._in_string = self._escaped = False
        self._closers = closers
        self._closing_from = None
        if max_new_tokens is not None:
            reserve = closing_reserve(max_new_tokens=max_new_tokens, shortest_tokens=grammar.shortest_tokens)
            self._closing_from = max(0, max_new_tokens - reserve)

    def allowed(self, generated: Sequence[int], *, vocab_size: int) -> torch.Tensor:
        if len(generated) > self._consumed:
            new = list(generated[self._consumed :])
            self._matcher.consume_tokens(new)
            self._consumed = len(generated)
            if self._closers is not None:
                self._track_strings(new)
        bits = np.frombuffer(self._matcher.compute_bitmask(), dtype=np.uint8)
        mask = torch.from_numpy(np.unpackbits(bits, bitorder="little")[:vocab_size].astype(bool))
        if mask.numel() < vocab_size:
            mask = torch.cat([mask, torch.zeros(vocab_size - mask.numel(), dtype=torch.bool)])
        if self._closers is not None and self._closing_from is not None and len(generated) >= self._closing_from:
            closers = self._closers
            tiers: tuple[torch.Tensor, ...]
            if self._in_string:
                tiers = (closers.quote_alone, closers.quote)
            else:
                tiers = (closers.end, closers.close_alone, closers.quote_alone, closers.comma, closers.quote)
            for tier in tiers:
                closing = mask & tier
                if bool(closing.any()):
                    return closing
        return mask

    def _track_strings(self, tokens: Sequence[int]) -> None:
        """Whether the output so far ends inside a JSON string (quotes and backslashes are ASCII, so decoding
        token by token reads them right)."""
        if self._closers is None:
            raise RuntimeError("string tracking needs the vocabulary's closers")
        for token in tokens:
            for char in self._closers.texts[token] if token < len(self._closers.texts) else "":
                if self._escaped:
                    self._escaped = False
                elif self._in_string and char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = not self._in_string
