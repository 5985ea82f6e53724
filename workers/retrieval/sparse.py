"""BM25 over chunks with scipy sparse term-frequency matrices, appendable and deletable in place.

Each ``add`` call appends a segment (a CSC chunk × term matrix); deletes set tombstones. Document
frequencies, the live chunk count and the total length are kept as running values, so scores are
always those of a BM25 built over exactly the live chunks. ``compact`` merges segments and drops
tombstoned rows; it runs on ``save`` and whenever tombstones or segments pile up.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from workers.retrieval.analyzer import Analyzer

_MAX_SEGMENTS = 8
_MAX_DEAD_SHARE = 0.2


@dataclass(slots=True)
class _Segment:
    ids: np.ndarray  # int64 chunk ids, ascending
    tf: sp.csc_matrix  # rows = chunks, columns = term ids known when the segment was built
    lengths: np.ndarray  # float32 term count per chunk
    alive: np.ndarray  # bool


@dataclass(frozen=True, slots=True)
class SparseScores:
    """BM25 scores of every live chunk sharing at least one term with the query, ids ascending."""

    ids: np.ndarray
    scores: np.ndarray

    def top(self, *, limit: int) -> SparseScores:
        if len(self.ids) > limit:
            keep = np.argpartition(-self.scores, limit - 1)[:limit]
            keep.sort()
            return SparseScores(ids=self.ids[keep], scores=self.scores[keep])
        return self

    def lookup(self, *, ids: np.ndarray) -> np.ndarray:
        """Scores for ``ids``; zero where a chunk shares no term with the query."""
        if len(self.ids) == 0:
            return np.zeros(len(ids), dtype=np.float32)
        positions = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return np.where(self.ids[positions] == ids, self.scores[positions], 0.0).astype(np.float32)


@dataclass(slots=True)
class SparseIndex:
    analyzer: Analyzer = field(default_factory=Analyzer)
    k1: float = 1.2
    b: float = 0.75
    _vocab: dict[str, int] = field(default_factory=dict)
    _df: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _segments: list[_Segment] = field(default_factory=list)
    _live: int = 0
    _total_length: float = 0.0

    def __len__(self) -> int:
        return self._live

    def add(self, *, ids: Sequence[int], texts: Sequence[str]) -> None:
        """Index ``texts`` under ``ids``, ascending and larger than every id added before."""
        if not ids:
            return
        if (self._segments and ids[0] <= self._segments[-1].ids[-1]) or list(ids) != sorted(set(ids)):
            raise ValueError("sparse index ids must be unique, ascending and new")
        rows: list[int] = []
        cols: list[int] = []
        counts: list[int] = []
        lengths = np.zeros(len(texts), dtype=np.float32)
        for row, text in enumerate(texts):
            terms = Counter(self.analyzer.terms(text=text))
            lengths[row] = sum(terms.values())
            for term, count in terms.items():
                rows.append(row)
                cols.append(self._vocab.setdefault(term, len(self._vocab)))
                counts.append(count)
        tf = sp.csc_matrix(
            (np.asarray(counts, dtype=np.float32), (np.asarray(rows), np.asarray(cols, dtype=np.int64))),
            shape=(len(texts), len(self._vocab)),
        )
        self._df = np.concatenate([self._df, np.zeros(len(self._vocab) - len(self._df), dtype=np.int64)])
        self._df[: tf.shape[1]] += np.diff(tf.indptr)
        self._live += len(texts)
        self._total_length += float(lengths.sum())
        self._segments.append(
            _Segment(
                ids=np.asarray(ids, dtype=np.int64),
                tf=tf,
                lengths=lengths,
                alive=np.ones(len(texts), dtype=bool),
            )
        )
        if len(self._segments) > _MAX_SEGMENTS:
            self.compact()

    def remove(self, *, ids: Iterable[int]) -> None:
        wanted = np.unique(np.fromiter(ids, dtype=np.int64))
        for segment in self._segments:
            rows = np.flatnonzero(np.isin(segment.ids, wanted) & segment.alive)
            if len(rows) == 0:
                continue
            segment.alive[rows] = False
            removed = sp.csc_matrix(segment.tf[rows])
            self._df[: removed.shape[1]] -= np.diff(removed.indptr)
            self._live -= len(rows)
            self._total_length -= float(segment.lengths[rows].sum())
        dead = sum(int((~segment.alive).sum()) for segment in self._segments)
        if dead > _MAX_DEAD_SHARE * max(self._live, 1):
            self.compact()

    def compact(self) -> None:
        live = [segment for segment in self._segments if segment.alive.any()]
        if not live:
            self._segments = []
            return
        width = len(self._vocab)
        ids = np.concatenate([segment.ids[segment.alive] for segment in live])
        self._segments = [
            _Segment(
                ids=ids,
                tf=sp.vstack([_widen(segment.tf[segment.alive], width) for segment in live], format="csc"),
                lengths=np.concatenate([segment.lengths[segment.alive] for segment in live]),
                alive=np.ones(len(ids), dtype=bool),
            )
        ]

    def score(self, *, query: str) -> SparseScores:
        query_weights = self.analyzer.query_weights(query=query)
        known = [(self._vocab[term], weight) for term, weight in query_weights.items() if term in self._vocab]
        if not known or not self._live:
            return SparseScores(ids=np.zeros(0, dtype=np.int64), scores=np.zeros(0, dtype=np.float32))
        columns = np.asarray([column for column, _ in known], dtype=np.int64)
        df = self._df[columns].astype(np.float64)
        weights = np.log1p((self._live - df + 0.5) / (df + 0.5)) * np.asarray([weight for _, weight in known])
        average_length = self._total_length / self._live
        found_ids: list[np.ndarray] = []
        found_scores: list[np.ndarray] = []
        for segment in self._segments:
            inside = columns < segment.tf.shape[1]
            postings = segment.tf[:, columns[inside]]
            rows = postings.indices
            tf = postings.data
            term_weight = np.repeat(weights[inside], np.diff(postings.indptr))
            norm = self.k1 * (1.0 - self.b + self.b * segment.lengths[rows] / average_length)
            scores = np.bincount(
                rows, weights=term_weight * tf * (self.k1 + 1.0) / (tf + norm), minlength=len(segment.ids)
            )
            hit = np.flatnonzero((scores > 0) & segment.alive)
            found_ids.append(segment.ids[hit])
            found_scores.append(scores[hit].astype(np.float32))
        return SparseScores(ids=np.concatenate(found_ids), scores=np.concatenate(found_scores))

    def save(self, *, directory: Path) -> None:
        self.compact()
        directory.mkdir(parents=True, exist_ok=True)
        if self._segments:
            segment = self._segments[0]
            ids, lengths, tf = segment.ids, segment.lengths, _widen(segment.tf, len(self._vocab))
        else:
            ids, lengths = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            tf = sp.csc_matrix((0, len(self._vocab)), dtype=np.float32)
        np.savez(
            directory / "sparse.npz",
            ids=ids,
            lengths=lengths,
            data=tf.data,
            indices=tf.indices,
            indptr=tf.indptr,
            df=self._df,
        )
        vocabulary = sorted(self._vocab, key=self._vocab.__getitem__)
        (directory / "sparse.json").write_text(
            json.dumps({"vocabulary": vocabulary}, ensure_ascii=False),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, *, directory: Path, analyzer: Analyzer, k1: float = 1.2, b: float = 0.75) -> SparseIndex:
        """``k1`` and ``b`` are read at query time only, so a saved index can be searched with new ones."""
        meta = json.loads((directory / "sparse.json").read_text(encoding="utf-8"))
        vocabulary: list[str] = meta["vocabulary"]
        index = cls(analyzer=analyzer, k1=k1, b=b)
        index._vocab = {term: i for i, term in enumerate(vocabulary)}
        with np.load(directory / "sparse.npz") as arrays:
            index._df = arrays["df"]
            ids, lengths = arrays["ids"], arrays["lengths"]
            tf = sp.csc_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(len(ids), len(vocabulary)))
        if len(ids):
            index._segments = [_Segment(ids=ids, tf=tf, lengths=lengths, alive=np.ones(len(ids), dtype=bool))]
            index._live = len(ids)
            index._total_length = float(lengths.sum())
        return index


def _widen(tf: sp.spmatrix, width: int) -> sp.csc_matrix:
    """Pad a segment's term columns to the current vocabulary size (older segments are narrower)."""
    tf = sp.csc_matrix(tf)
    if tf.shape[1] == width:
        return tf
    indptr = np.concatenate([tf.indptr, np.full(width - tf.shape[1], tf.indptr[-1], dtype=tf.indptr.dtype)])
    return sp.csc_matrix((tf.data, tf.indices, indptr), shape=(tf.shape[0], width))
