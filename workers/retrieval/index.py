"""Per-plugin hybrid index: chunks scored by BM25 (sparse) and embeddings (dense), kept in one directory.

Scoring of a query, per candidate chunk (candidates = the sparse top ``pool`` ∪ the dense top ``pool``):

- sparse: BM25 divided by the best BM25 over all matching chunks (so in [0, 1]); with the profile's
  ``document_weight`` w, the chunk's document's best such score is added and the sum divided by 1 + w;
- dense: cosine similarity of the L2-normalised embeddings divided by the best cosine among the
  candidates (when positive), so that both sides put their best candidate at 1 (measured on the dev
  sets: as good as or slightly better than raw cosine or min-max, far better than rank fusion);
- hybrid: ``(tfidf_weight × sparse + embedding_weight × dense) × prior``, where the prior of a document's
  chunks is ``1 + citation_weight × ln(1 + n)``, n = the other documents in the index that cite it as
  《title》 (a title's trailing （…） qualifier is ignored, so the books of the Civil Code share the Code's
  citations). Counts follow every add and delete.

A side whose weight is 0 is not computed at all (no query embedding for pure BM25).
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.retrieval.chunking import Chunk, chunk_document
from workers.retrieval.dense import DenseIndex
from workers.retrieval.documents import Document
from workers.retrieval.embeddings import Embedder
from workers.retrieval.profiles import RetrievalProfile, upgraded
from workers.retrieval.sparse import SparseIndex, SparseScores

# Candidates taken from each side, whatever top_k: fusion needs the other side's near misses too.
_MIN_POOL = 100
_CITED_TITLE = re.compile(r"《([^《》\n]{2,80})》")
_TITLE_QUALIFIER = re.compile(r"\s*[（(][^（）()]*[）)]$")


def citation_key(title: str) -> str:
    """The name a document is cited by: its title without a trailing （…） qualifier."""
    return _TITLE_QUALIFIER.sub("", title.strip())


@dataclass(frozen=True, slots=True)
class Hit:
    doc_id: str
    ordinal: int
    title: str
    url: str | None
    text: str
    start: int
    end: int
    score: float
    scores: dict[str, float]


@dataclass(frozen=True, slots=True)
class _StoredDocument:
    title: str
    url: str | None
    text: str
    chunk_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _ChunkRef:
    doc_id: str
    ordinal: int
    start: int
    end: int


class HybridIndex:
    """Not thread-safe: one writer per index directory, and no search while a write is under way."""

    def __init__(
        self, *, directory: Path, profile: RetrievalProfile, embedder: Embedder | None = None
    ) -> None:
        self.directory = Path(directory)
        self.profile = profile
        self.embedder = embedder or Embedder()
        self._sparse = SparseIndex(analyzer=profile.analyzer(), k1=profile.k1, b=profile.b)
        self._dense = DenseIndex(dimension=self.embedder.dimension)
        self._documents: dict[str, _StoredDocument] = {}
        self._chunks: dict[int, _ChunkRef] = {}
        self._next_id = 0
        # Indexed by chunk id (ids are never reused): the chunk's document slot, for document-level
        # aggregation and the document prior.
        self._doc_slot = np.zeros(0, dtype=np.int64)
        self._slots: dict[str, int] = {}
        # Citation prior: the names each document cites, how many documents cite each name, and the prior
        # per slot (recomputed on the first search after a change).
        self._cites: dict[str, frozenset[str]] = {}
        self._cited_by: Counter[str] = Counter()
        self._prior: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._documents

    def add_documents(self, *, documents: Iterable[Document]) -> int:
        """Chunk, embed and index ``documents`` (replacing any with the same id, the last one winning
        within ``documents``); returns the number of chunks added."""
        pending: dict[str, tuple[Document, list[Chunk]]] = {}
        for document in documents:
            pending[document.id] = (
                document,
                chunk_document(
                    text=document.text,
                    title=document.title,
                    kind=self.profile.chunk_kind,
                    max_tokens=self.profile.max_tokens,
                    overlap=self.profile.overlap,
                ),
            )
        indexed_texts = [chunk.indexed_text for _, chunks in pending.values() for chunk in chunks]
        vectors = self.embedder.embed(texts=indexed_texts)
        for doc_id in pending:
            self.delete_document(external_id=doc_id)
        ids = np.arange(self._next_id, self._next_id + len(indexed_texts), dtype=np.int64)
        self._next_id += len(indexed_texts)
        self._sparse.add(ids=ids.tolist(), texts=indexed_texts)
        self._dense.add(ids=ids, vectors=vectors)
        next_ids = iter(ids.tolist())
        for document, chunks in pending.values():
            chunk_ids = [next(next_ids) for _ in chunks]
            self._remember(
                doc_id=document.id,
                stored=_StoredDocument(
                    title=document.title, url=document.url, text=document.text, chunk_ids=tuple(chunk_ids)
                ),
                chunks={
                    chunk_id: _ChunkRef(
                        doc_id=document.id, ordinal=chunk.ordinal, start=chunk.start, end=chunk.end
                    )
                    for chunk_id, chunk in zip(chunk_ids, chunks, strict=True)
                },
            )
        return len(indexed_texts)

    def delete_document(self, *, external_id: str) -> bool:
        stored = self._documents.pop(external_id, None)
        if stored is None:
            return False
        self._sparse.remove(ids=stored.chunk_ids)
        self._dense.remove(ids=stored.chunk_ids)
        for chunk_id in stored.chunk_ids:
            del self._chunks[chunk_id]
        self._cited_by.subtract(self._cites.pop(external_id, frozenset()))
        self._prior = None
        return True

    def search(
        self,
        *,
        query: str,
        top_k: int = 10,
        tfidf_weight: float | None = None,
        embedding_weight: float | None = None,
        allowed_ids: set[str] | None = None,
    ) -> list[Hit]:
        """Best ``top_k`` chunks; weights default to the profile's (see ``profiles.default_weights``).

        With ``allowed_ids`` (documents' external ids), only those documents' chunks are scored and ranked, as
        if the index held nothing else (normalisation included); idf and the citation prior stay index-wide."""
        sparse_weight = self.profile.tfidf_weight if tfidf_weight is None else tfidf_weight
        dense_weight = self.profile.embedding_weight if embedding_weight is None else embedding_weight
        if sparse_weight < 0 or dense_weight < 0 or sparse_weight + dense_weight == 0:
            raise ValueError("tfidf_weight and embedding_weight must be >= 0 and not both 0")
        if top_k <= 0 or not self._chunks:
            return []
        allowed = None
        if allowed_ids is not None:
            allowed = np.asarray(
                sorted(c for doc_id in allowed_ids if doc_id in self._documents
                       for c in self._documents[doc_id].chunk_ids),
                dtype=np.int64,
            )
            if len(allowed) == 0:
                return []
        pool = max(top_k, _MIN_POOL)
        prior = self._document_prior()
        candidates: list[np.ndarray] = []
        sparse = None
        query_vector = None
        if sparse_weight:
            matched = self._sparse.score(query=query)
            if allowed is not None:
                keep = np.isin(matched.ids, allowed)
                matched = SparseScores(ids=matched.ids[keep], scores=matched.scores[keep])
            sparse = self._sparse_relevance(matched)
            ranked = SparseScores(ids=sparse.ids, scores=sparse.scores * prior[self._doc_slot[sparse.ids]])
            candidates.append(ranked.top(limit=pool).ids)
        if dense_weight:
            query_vector = self.embedder.embed(texts=[query])[0]
            candidates.append(self._dense.search(vector=query_vector, limit=pool, allowed=allowed)[0])
        ids = np.unique(np.concatenate(candidates))
        sparse_scores = sparse.lookup(ids=ids) if sparse is not None else np.zeros(len(ids), dtype=np.float32)
        dense_scores = np.zeros(len(ids), dtype=np.float32)
        if query_vector is not None and len(ids):
            dense_scores = self._dense.scores_for(vector=query_vector, ids=ids)
            best = float(dense_scores.max())
            if best > 0:
                dense_scores /= best
        final = (sparse_weight * sparse_scores + dense_weight * dense_scores) * prior[self._doc_slot[ids]]
        order = np.lexsort((ids, -final))[:top_k]
        return [
            self._hit(
                int(ids[i]),
                score=float(final[i]),
                sparse=float(sparse_scores[i]),
                dense=float(dense_scores[i]),
            )
            for i in order
        ]

    def save(self) -> None:
        """Write the index to its directory, replacing the previous copy only once the new one is complete."""
        staging = self.directory.with_name(self.directory.name + ".saving")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        meta = {
            "profile": self.profile.to_json(),
            "embedding_model": self.embedder.model_dir,
            "dimension": self.embedder.dimension,
            "next_id": self._next_id,
        }
        (staging / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        with (staging / "documents.jsonl").open("w", encoding="utf-8") as out:
            for doc_id, stored in self._documents.items():
                chunks = [
                    [
                        chunk_id,
                        self._chunks[chunk_id].ordinal,
                        self._chunks[chunk_id].start,
                        self._chunks[chunk_id].end,
                    ]
                    for chunk_id in stored.chunk_ids
                ]
                row = {
                    "id": doc_id,
                    "title": stored.title,
                    "url": stored.url,
                    "text": stored.text,
                    "chunks": chunks,
                }
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._sparse.save(directory=staging)
        self._dense.save(directory=staging)
        previous = self.directory.with_name(self.directory.name + ".previous")
        shutil.rmtree(previous, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(previous)
        staging.rename(self.directory)
        shutil.rmtree(previous, ignore_errors=True)

    @classmethod
    def load(cls, *, directory: Path, embedder: Embedder | None = None) -> HybridIndex:
        """Open a saved index; without ``embedder``, one for the model recorded at save time."""
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        profile = upgraded(saved=RetrievalProfile.from_json(data=meta["profile"]))
        index = cls(
            directory=directory,
            profile=profile,
            embedder=embedder or Embedder(model_dir=meta["embedding_model"]),
        )
        if index.embedder.dimension != meta["dimension"]:
            raise ValueError(
                f"index {directory} holds {meta['dimension']}-d vectors; the embedder makes "
                f"{index.embedder.dimension}-d ones"
            )
        index._sparse = SparseIndex.load(directory=directory, analyzer=profile.analyzer(), k1=profile.k1, b=profile.b)
        index._dense = DenseIndex.load(directory=directory)
        index._next_id = meta["next_id"]
        with (directory / "documents.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                refs = {
                    chunk_id: _ChunkRef(doc_id=row["id"], ordinal=ordinal, start=start, end=end)
                    for chunk_id, ordinal, start, end in row["chunks"]
                }
                stored = _StoredDocument(
                    title=row["title"], url=row["url"], text=row["text"], chunk_ids=tuple(refs)
                )
                index._remember(doc_id=row["id"], stored=stored, chunks=refs)
        return index

    def _remember(self, *, doc_id: str, stored: _StoredDocument, chunks: dict[int, _ChunkRef]) -> None:
        if len(self._doc_slot) < self._next_id:
            grow = self._next_id - len(self._doc_slot)
            self._doc_slot = np.concatenate([self._doc_slot, np.zeros(grow, dtype=np.int64)])
        self._documents[doc_id] = stored
        self._chunks.update(chunks)
        self._doc_slot[list(chunks)] = self._slots.setdefault(doc_id, len(self._slots))
        if self.profile.citation_weight:
            cited = frozenset(map(citation_key, _CITED_TITLE.findall(stored.text))) - {citation_key(stored.title)}
            self._cites[doc_id] = cited
            self._cited_by.update(cited)
        self._prior = None

    def _document_prior(self) -> np.ndarray:
        """Per document slot, the factor its chunks' scores are multiplied by."""
        if self._prior is None:
            prior = np.ones(len(self._slots), dtype=np.float32)
            weight = self.profile.citation_weight
            if weight:
                for doc_id, stored in self._documents.items():
                    citations = self._cited_by[citation_key(stored.title)]
                    prior[self._slots[doc_id]] = 1.0 + weight * np.log1p(citations)
            self._prior = prior
        return self._prior

    def _sparse_relevance(self, matched: SparseScores) -> SparseScores:
        if len(matched.ids) == 0:
            return matched
        scores = matched.scores / matched.scores.max()
        weight = self.profile.document_weight
        if weight:
            slots = self._doc_slot[matched.ids]
            best = np.zeros(len(self._slots), dtype=np.float32)
            np.maximum.at(best, slots, scores)
            scores = (scores + weight * best[slots]) / (1.0 + weight)
        return SparseScores(ids=matched.ids, scores=scores.astype(np.float32))

    def _hit(self, chunk_id: int, *, score: float, sparse: float, dense: float) -> Hit:
        ref = self._chunks[chunk_id]
        stored = self._documents[ref.doc_id]
        return Hit(
            doc_id=ref.doc_id,
            ordinal=ref.ordinal,
            title=stored.title,
            url=stored.url,
            text=stored.text[ref.start : ref.end],
            start=ref.start,
            end=ref.end,
            score=score,
            scores={"sparse": sparse, "dense": dense},
        )
