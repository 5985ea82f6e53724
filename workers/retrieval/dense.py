"""FAISS inner-product index over L2-normalised vectors, exact while small and HNSW past a threshold.

Both layouts sit behind ``IndexIDMap2`` so callers add, remove and reconstruct by their own integer
ids. HNSW cannot delete in place: removed ids become tombstones that searches skip, and the graph is
rebuilt from the live vectors once tombstones exceed a share of the index.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

_REBUILD_DEAD_SHARE = 0.1
# Up to this many allowed ids, a restricted search scores them all exactly instead of asking FAISS.
_EXACT_ALLOWED_MAX = 20_000


@dataclass(slots=True)
class DenseIndex:
    dimension: int
    hnsw_threshold: int = 200_000
    hnsw_m: int = 32
    ef_search: int = 128
    _index: faiss.IndexIDMap2 = field(init=False)
    _tombstones: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._tombstones)

    @property
    def is_hnsw(self) -> bool:
        return isinstance(faiss.downcast_index(self._index.index), faiss.IndexHNSWFlat)

    def add(self, *, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        if not self.is_hnsw and self._index.ntotal > self.hnsw_threshold:
            self._rebuild(hnsw=True)

    def remove(self, *, ids: Iterable[int]) -> None:
        wanted = np.asarray(sorted(set(ids)), dtype=np.int64)
        if len(wanted) == 0:
            return
        if not self.is_hnsw:
            self._index.remove_ids(faiss.IDSelectorBatch(wanted))
            return
        self._tombstones.update(int(i) for i in wanted)
        if len(self._tombstones) > _REBUILD_DEAD_SHARE * self._index.ntotal:
            self._rebuild(hnsw=len(self) > self.hnsw_threshold)

    def search(
        self, *, vector: np.ndarray, limit: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``limit`` (ids, inner products), best first; with ``allowed`` (live ids), only among those."""
        if len(self) == 0 or limit <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if allowed is not None:
            return self._search_among(vector=vector, limit=limit, allowed=np.asarray(allowed, dtype=np.int64))
        fetch = min(limit + len(self._tombstones), int(self._index.ntotal))
        # One query vector: OpenMP fan-out costs more than it saves on a busy 2-core host.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self._index.search(vector.reshape(1, -1).astype(np.float32), fetch)
        finally:
            faiss.omp_set_num_threads(threads)
        keep = ids[0] >= 0
        if self._tombstones:
            keep &= ~np.isin(ids[0], np.fromiter(self._tombstones, dtype=np.int64))
        return ids[0][keep][:limit], scores[0][keep][:limit]

    def _search_among(self, *, vector: np.ndarray, limit: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(allowed) <= _EXACT_ALLOWED_MAX:
            # Exact on a small allowed set: an HNSW walk with a selective filter can miss allowed neighbours.
            scores = self.scores_for(vector=vector, ids=allowed)
            order = np.lexsort((allowed, -scores))[:limit]
            return allowed[order], scores[order]
        selector = faiss.IDSelectorBatch(allowed)
        # faiss' bundled stubs lack SearchParametersHNSW and the keyword arguments its Python layer adds.
        params = (
            faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, limit))  # type: ignore[attr-defined]
            if self.is_hnsw
            else faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        )
        scores, ids = self._index.search(
            vector.reshape(1, -1).astype(np.float32), min(limit, len(allowed)), params=params
        )
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def scores_for(self, *, vector: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Exact inner products with the stored vectors of ``ids`` (all must be live)."""
        if len(ids) == 0:
            return np.zeros(0, dtype=np.float32)
        stored = self._index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        return (stored @ vector.astype(np.float32)).astype(np.float32)

    def save(self, *, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(directory / "dense.faiss"))
        (directory / "dense.json").write_text(
            json.dumps(
                {
                    "dimension": self.dimension,
                    "hnsw_threshold": self.hnsw_threshold,
                    "hnsw_m": self.hnsw_m,
                    "ef_search": self.ef_search,
                    "tombstones": sorted(self._tombstones),
                }
            ),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, *, directory: Path) -> DenseIndex:
        meta = json.loads((directory / "dense.json").read_text(encoding="utf-8"))
        index = cls(
            dimension=meta["dimension"],
            hnsw_threshold=meta["hnsw_threshold"],
            hnsw_m=meta["hnsw_m"],
            ef_search=meta["ef_search"],
        )
        stored = faiss.read_index(str(directory / "dense.faiss"))
        if not isinstance(stored, faiss.IndexIDMap2):
            raise ValueError(f"{directory / 'dense.faiss'} holds a {type(stored).__name__}, not an IndexIDMap2")
        index._index = stored
        index._tombstones = set(meta["tombstones"])
        inner = faiss.downcast_index(stored.index)
        if isinstance(inner, faiss.IndexHNSWFlat):
            inner.hnsw.efSearch = index.ef_search
        return index

    def _rebuild(self, *, hnsw: bool) -> None:
        """Re-create the index from its live vectors, as HNSW or as an exact flat index."""
        all_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vectors = self._index.index.reconstruct_n(0, self._index.ntotal)
        live = ~np.isin(all_ids, np.fromiter(self._tombstones, dtype=np.int64))
        inner: faiss.Index
        if hnsw:
            graph = faiss.IndexHNSWFlat(self.dimension, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efSearch = self.ef_search
            inner = graph
        else:
            inner = faiss.IndexFlatIP(self.dimension)
        rebuilt = faiss.IndexIDMap2(inner)
        rebuilt.add_with_ids(vectors[live], all_ids[live])
        self._index = rebuilt
        self._tombstones = set()
