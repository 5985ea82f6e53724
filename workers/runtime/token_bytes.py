"""Each token's own raw bytes, for OpenAI-style log probabilities.

Decoding one token id to text and encoding that again loses the bytes of a token that holds only part of a
UTF-8 character (it decodes to U+FFFD). The bytes come instead from the token's vocabulary entry, read the way
the tokenizer's decoder reads it: byte-level BPE (GPT-2 style) maps each character of the entry back to one
byte; SentencePiece with byte fallback spells raw bytes ``<0xE2>`` and spaces ``▁``. Any other tokenizer falls
back to decoding the token alone. Concatenating the bytes of consecutive tokens then rebuilds their text.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from dataclasses import dataclass
from enum import Enum
from typing import Any

from transformers import PreTrainedTokenizerBase

from workers.runtime.tokenizer_text import decode_text

_SENTENCEPIECE_SPACE = "\u2581"  # ▁
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


class _Kind(Enum):
    BYTE_LEVEL = "byte-level"
    SENTENCEPIECE = "sentencepiece"
    OTHER = "other"


@dataclass(frozen=True)
class TokenPiece:
    """One token as OpenAI's ``logprobs`` show it: ``text`` is its bytes as UTF-8, a part of a character spelt
    with ``\\x`` escapes (``"\\xf0\\x9f"``, as OpenAI's API does); ``raw`` its bytes."""

    text: str
    raw: bytes


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte-level alphabet: each byte as one printable character (bytes that are printable stand for
    themselves, the rest are shifted past 255)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = list(printable)
    shift = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + shift)
            shift += 1
    return {byte: chr(code) for byte, code in zip(printable, codes, strict=True)}


_UNICODE_TO_BYTE = {char: byte for byte, char in _bytes_to_unicode().items()}


def _decoder_types(tokenizer: PreTrainedTokenizerBase) -> set[str]:
    """The ``type`` of a fast tokenizer's decoder and of every decoder in it (a ``Sequence`` nests them)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None)
    if decoder is None:
        return set()
    types: set[str] = set()
    stack: list[Any] = [json.loads(decoder.__getstate__())]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("type"), str):
                types.add(node["type"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return types


def _kind(tokenizer: PreTrainedTokenizerBase) -> tuple[_Kind, bool]:
    """How the tokenizer's vocabulary spells bytes, and whether it has ``<0xHH>`` byte tokens."""
    try:
        types = _decoder_types(tokenizer)
    except (TypeError, ValueError, AttributeError):
        types = set()
    if "ByteLevel" in types or (not types and hasattr(tokenizer, "byte_decoder")):
        return _Kind.BYTE_LEVEL, False
    if "ByteFallback" in types or "Metaspace" in types:
        return _Kind.SENTENCEPIECE, "ByteFallback" in types
    if not types and hasattr(tokenizer, "sp_model"):
        return _Kind.SENTENCEPIECE, True
    return _Kind.OTHER, False


class TokenBytes:
    """Token id -> ``TokenPiece`` for one tokenizer, worked out on first use of each id and kept (thread-safe:
    two threads working out the same id store equal values)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        # Weakly: ``token_bytes`` keeps this table for as long as the tokenizer lives, not longer.
        self._tokenizer = weakref.ref(tokenizer)
        self._kind, self._byte_tokens = _kind(tokenizer)
        self._added = {token_id: token.content for token_id, token in tokenizer.added_tokens_decoder.items()}
        self._pieces: dict[int, TokenPiece] = {}

    def piece(self, token_id: int) -> TokenPiece:
        cached = self._pieces.get(token_id)
        if cached is None:
            raw = self._raw(token_id)
            cached = self._pieces[token_id] = TokenPiece(text=raw.decode("utf-8", errors="backslashreplace"), raw=raw)
        return cached

    def _raw(self, token_id: int) -> bytes:
        tokenizer = self._tokenizer()
        if tokenizer is None:
            raise RuntimeError("the tokenizer of this table is gone")
        if token_id in self._added:  # special and added tokens: their text
            return self._added[token_id].encode()
        if self._kind is not _Kind.OTHER:
            entry = tokenizer.convert_ids_to_tokens(token_id)
            if not isinstance(entry, str):  # past the tokenizer's vocabulary (a model's padded logits)
                return b""
            if self._kind is _Kind.BYTE_LEVEL:
                if all(char in _UNICODE_TO_BYTE for char in entry):
                    return bytes(_UNICODE_TO_BYTE[char] for char in entry)
            else:
                byte = _BYTE_PIECE.fullmatch(entry) if self._byte_tokens else None
                if byte is not None:
                    return bytes([int(byte.group(1), 16)])
                return entry.replace(_SENTENCEPIECE_SPACE, " ").encode()
        text = decode_text(tokenizer, [token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return text.encode()


_tables: weakref.WeakKeyDictionary[PreTrainedTokenizerBase, TokenBytes] = weakref.WeakKeyDictionary()
_tables_lock = threading.Lock()


def token_bytes(tokenizer: PreTrainedTokenizerBase) -> TokenBytes:
    """The ``TokenBytes`` of ``tokenizer``, one per tokenizer object while it lives: the table fills as ids come
    up, so requests never rebuild it."""
    with _tables_lock:
        table = _tables.get(tokenizer)
        if table is None:
            table = _tables[tokenizer] = TokenBytes(tokenizer)
        return table
