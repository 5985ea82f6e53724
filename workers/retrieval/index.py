"""Per-plugin hybrid index: chunks scored by BM25 (sparse) and embeddings (dense), kept in one directory.

Scoring and fusion: ``fusion``; the directory format: ``index_files``. Citation counts follow every add and
delete. A side whose weight is 0 is not computed at all (no query embedding for pure BM25).

Chunks can be added without vectors (``add_documents(embed=False)``): they are searchable by BM25 at once,
and ``pending_dense`` lists what the dense side still lacks. Until it is complete (``dense_ready``) searches
run on the sparse side alone, so a half-built dense side never skews the ranking.

Single chunks can be edited (``edit_chunk``: a text override replacing the document's span) and disabled
(``set_chunk_enabled``: kept, but out of both sides). Either way the chunk is re-indexed under a new id, so a
vector computed in the background for its old text (``add_vectors``) is never taken for the new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from workers.retrieval.catalog import (
    ChunkCatalog,
    ChunkOverride,
    ChunkRef,
    StoredDocument,
    chunk_text,
    document_refs,
    indexed_text,
)
from workers.retrieval.dense import DenseIndex
from workers.retrieval.documents import Document
from workers.retrieval.embeddings import TextEmbedder, load_embedder
from workers.retrieval.fusion import MIN_POOL, dense_relevance, sparse_relevance
from workers.retrieval.index_files import read_documents, read_meta, write_index
from workers.retrieval.profiles import RetrievalProfile, upgraded
from workers.retrieval.sparse import SparseIndex, SparseScores


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
class ChunkState:
    """One chunk of a document as the index holds it."""

    ordinal: int
    text: str
    start: int
    end: int
    enabled: bool
    edited: bool


class HybridIndex:
    """Not thread-safe: one writer per index directory, and no search while a write is under way."""

    def __init__(self, *, directory: Path, profile: RetrievalProfile, embedder: TextEmbedder | None = None) -> None:
        self.directory = Path(directory)
        self.profile = profile
        self.embedder = embedder or load_embedder()
        self._sparse = SparseIndex(analyzer=profile.analyzer(), k1=profile.k1, b=profile.b)
        self._dense = DenseIndex(dimension=self.embedder.dimension)
        self._catalog = ChunkCatalog(citation_weight=profile.citation_weight)
        self._next_id = 0
        # Live chunks with no vector yet (added with embed=False, or all of them after reset_dense).
        self._pending: set[int] = set()

    def __len__(self) -> int:
        return len(self._catalog.chunks)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._catalog.documents

    @property
    def dense_ready(self) -> bool:
        return not self._pending

    def pending_dense(self) -> list[tuple[int, str]]:
        """(chunk id, text to embed) of the live chunks that have no vector yet, in id order."""
        return [
            (chunk_id, self.profile.dense_text(self._catalog.indexed_text(chunk_id)))
            for chunk_id in sorted(self._pending)
        ]

    def add_vectors(self, *, ids: Sequence[int], vectors: np.ndarray) -> int:
        """Give pending chunks their vectors; ids no longer pending (deleted, replaced or already embedded) are
        skipped. Returns the number taken."""
        keep = [row for row, chunk_id in enumerate(ids) if chunk_id in self._pending]
        if keep:
            taken = np.asarray([ids[row] for row in keep], dtype=np.int64)
            self._dense.add(ids=taken, vectors=np.asarray(vectors, dtype=np.float32)[keep])
            self._pending.difference_update(taken.tolist())
        return len(keep)

    def reset_dense(self, *, embedder: TextEmbedder) -> None:
        """Switch to another embedding model: every chunk's vector is dropped and pending again."""
        self.embedder = embedder
        self._dense = DenseIndex(dimension=embedder.dimension)
        self._pending = set(self._catalog.chunks)

    def add_documents(
        self,
        *,
        documents: Iterable[Document],
        embed: bool = True,
        overrides: Mapping[str, Mapping[int, ChunkOverride]] | None = None,
    ) -> int:
        """Chunk, embed and index ``documents`` (replacing any with the same id, the last one winning
        within ``documents``); returns the number of chunks added. With ``embed=False`` the chunks get no
        vectors yet (see ``pending_dense``). ``overrides`` (by document id, then chunk ordinal) gives chunks
        their edited text or keeps them disabled, as when an index is rebuilt."""
        pending: dict[str, tuple[Document, list[ChunkRef], list[ChunkRef]]] = {}
        for document in documents:
            edits = (overrides or {}).get(document.id, {})
            pending[document.id] = (document, *document_refs(document=document, profile=self.profile, edits=edits))
        indexed_texts = [
            indexed_text(title=document.title, text=document.text, ref=ref)
            for document, live, _ in pending.values()
            for ref in live
        ]
        vectors = (
            self.embedder.embed_passages(texts=[self.profile.dense_text(t) for t in indexed_texts]) if embed else None
        )
        for doc_id in pending:
            self.delete_document(external_id=doc_id)
        ids = np.arange(self._next_id, self._next_id + len(indexed_texts), dtype=np.int64)
        self._next_id += len(indexed_texts)
        self._sparse.add(ids=ids.tolist(), texts=indexed_texts)
        if vectors is not None:
            self._dense.add(ids=ids, vectors=vectors)
        else:
            self._pending.update(ids.tolist())
        next_ids = iter(ids.tolist())
        for document, live, disabled in pending.values():
            chunk_ids = [next(next_ids) for _ in live]
            self._catalog.remember(
                doc_id=document.id,
                stored=StoredDocument(
                    title=document.title,
                    url=document.url,
                    text=document.text,
                    chunk_ids=tuple(chunk_ids),
                    disabled=tuple(disabled),
                ),
                chunks=dict(zip(chunk_ids, live, strict=True)),
            )
        return len(indexed_texts)

    def document_chunks(self, *, external_id: str) -> list[ChunkState]:
        """The document's chunks, live and disabled, by ordinal; empty for an unknown document."""
        stored = self._catalog.documents.get(external_id)
        if stored is None:
            return []
        refs = [(self._catalog.chunks[chunk_id], True) for chunk_id in stored.chunk_ids]
        refs += [(ref, False) for ref in stored.disabled]
        return [
            ChunkState(
                ordinal=ref.ordinal,
                text=chunk_text(text=stored.text, ref=ref),
                start=ref.start,
                end=ref.end,
                enabled=enabled,
                edited=ref.text is not None,
            )
            for ref, enabled in sorted(refs, key=lambda item: item[0].ordinal)
        ]

    def edit_chunk(self, *, external_id: str, ordinal: int, text: str, embed: bool = True) -> bool:
        """Replace a chunk's text (back to the document's own span when ``text`` equals it). A live chunk is
        re-indexed at once: BM25, and its vector too when ``embed`` and the dense side is complete (otherwise it
        joins ``pending_dense``); a disabled one keeps the text for when it is enabled. Returns whether anything
        changed; raises KeyError for an unknown document or ordinal, and leaves the index as it was when
        embedding fails."""
        stored, chunk_id, ref = self._catalog.locate(doc_id=external_id, ordinal=ordinal)
        edited = replace(ref, text=None if text == stored.text[ref.start : ref.end] else text)
        if edited == ref:
            return False
        if chunk_id is None:
            self._catalog.replace_disabled(ref=edited)
            return True
        vector = self._vector_now(stored=stored, ref=edited, embed=embed)
        self._drop_live(chunk_id)
        new_id = self._add_live(stored=stored, ref=edited, vector=vector)
        self._catalog.replace_live(chunk_id=chunk_id, new_id=new_id, ref=edited)
        return True

    def set_chunk_enabled(self, *, external_id: str, ordinal: int, enabled: bool, embed: bool = True) -> bool:
        """Take a chunk out of both sides (kept, with its text) or put it back, embedded as ``edit_chunk``
        does. Returns whether anything changed; raises KeyError for an unknown document or ordinal."""
        stored, chunk_id, ref = self._catalog.locate(doc_id=external_id, ordinal=ordinal)
        if enabled == (chunk_id is not None):
            return False
        if chunk_id is not None:
            self._drop_live(chunk_id)
            self._catalog.disable(chunk_id=chunk_id)
            return True
        vector = self._vector_now(stored=stored, ref=ref, embed=embed)
        self._catalog.enable(new_id=self._add_live(stored=stored, ref=ref, vector=vector), ref=ref)
        return True

    def delete_document(self, *, external_id: str) -> bool:
        stored = self._catalog.forget(doc_id=external_id)
        if stored is None:
            return False
        self._sparse.remove(ids=stored.chunk_ids)
        self._dense.remove(ids=[c for c in stored.chunk_ids if c not in self._pending])
        self._pending.difference_update(stored.chunk_ids)
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
        """Best ``top_k`` chunks; weights default to the profile's (see ``profiles.default_weights``). While
        the dense side is incomplete, the sparse side alone ranks (``dense_ready``).

        With ``allowed_ids`` (documents' external ids), only those documents' chunks are scored and ranked, as
        if the index held nothing else (normalisation included); idf and the citation prior stay index-wide."""
        sparse_weight = self.profile.tfidf_weight if tfidf_weight is None else tfidf_weight
        dense_weight = self.profile.embedding_weight if embedding_weight is None else embedding_weight
        if sparse_weight < 0 or dense_weight < 0 or sparse_weight + dense_weight == 0:
            raise ValueError("tfidf_weight and embedding_weight must be >= 0 and not both 0")
        if top_k <= 0 or not self._catalog.chunks:
            return []
        if self._pending and dense_weight:
            sparse_weight, dense_weight = sparse_weight or 1.0, 0.0
        allowed = None
        if allowed_ids is not None:
            allowed = self._catalog.chunk_ids_of(allowed_ids)
            if len(allowed) == 0:
                return []
        pool = max(top_k, MIN_POOL)
        prior = self._catalog.prior()
        candidates: list[np.ndarray] = []
        sparse = None
        query_vector = None
        if sparse_weight:
            matched = self._sparse.score(query=query)
            if allowed is not None:
                keep = np.isin(matched.ids, allowed)
                matched = SparseScores(ids=matched.ids[keep], scores=matched.scores[keep])
            sparse = sparse_relevance(
                matched=matched,
                slots=self._catalog.slots(matched.ids),
                slot_count=self._catalog.slot_count,
                document_weight=self.profile.document_weight,
            )
            ranked = SparseScores(ids=sparse.ids, scores=sparse.scores * prior[self._catalog.slots(sparse.ids)])
            candidates.append(ranked.top(limit=pool).ids)
        if dense_weight:
            query_vector = self.embedder.embed_queries(texts=[query])[0]
            candidates.append(self._dense.search(vector=query_vector, limit=pool, allowed=allowed)[0])
        ids = np.unique(np.concatenate(candidates))
        sparse_scores = sparse.lookup(ids=ids) if sparse is not None else np.zeros(len(ids), dtype=np.float32)
        dense_scores = np.zeros(len(ids), dtype=np.float32)
        if query_vector is not None and len(ids):
            cosines = self._dense.scores_for(vector=query_vector, ids=ids)
            dense_scores = dense_relevance(cosines=cosines, floor=self.embedder.cosine_floor)
        final = (sparse_weight * sparse_scores + dense_weight * dense_scores) * prior[self._catalog.slots(ids)]
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
        meta = {
            "profile": self.profile.to_json(),
            "embedding_model": self.embedder.model_path,
            "dimension": self.embedder.dimension,
            "next_id": self._next_id,
            "pending_dense": sorted(self._pending),
        }
        documents = (
            (doc_id, stored, [self._catalog.chunks[chunk_id] for chunk_id in stored.chunk_ids])
            for doc_id, stored in self._catalog.documents.items()
        )
        write_index(directory=self.directory, meta=meta, documents=documents, sparse=self._sparse, dense=self._dense)

    @classmethod
    def load(cls, *, directory: Path, embedder: TextEmbedder | None = None) -> HybridIndex:
        """Open a saved index; without ``embedder``, one for the model recorded at save time."""
        directory = Path(directory)
        meta = read_meta(directory=directory)
        profile = upgraded(saved=RetrievalProfile.from_json(data=meta["profile"]))
        index = cls(
            directory=directory,
            profile=profile,
            embedder=embedder or load_embedder(meta["embedding_model"]),
        )
        if index.embedder.dimension != meta["dimension"]:
            raise ValueError(
                f"index {directory} holds {meta['dimension']}-d vectors; the embedder makes "
                f"{index.embedder.dimension}-d ones"
            )
        index._sparse = SparseIndex.load(directory=directory, analyzer=profile.analyzer(), k1=profile.k1, b=profile.b)
        index._dense = DenseIndex.load(directory=directory)
        index._next_id = meta["next_id"]
        index._pending = set(meta.get("pending_dense", ()))
        for doc_id, stored, refs in read_documents(directory=directory):
            index._catalog.remember(doc_id=doc_id, stored=stored, chunks=refs)
        return index

    def _vector_now(self, *, stored: StoredDocument, ref: ChunkRef, embed: bool) -> np.ndarray | None:
        """The chunk's vector when it is to be embedded now: never while other chunks wait for theirs, as the
        background build would then have to tell which model made it."""
        if not embed or not self.dense_ready:
            return None
        return self.embedder.embed_passages(
            texts=[self.profile.dense_text(indexed_text(title=stored.title, text=stored.text, ref=ref))]
        )

    def _drop_live(self, chunk_id: int) -> None:
        self._sparse.remove(ids=[chunk_id])
        if chunk_id in self._pending:
            self._pending.discard(chunk_id)
        else:
            self._dense.remove(ids=[chunk_id])

    def _add_live(self, *, stored: StoredDocument, ref: ChunkRef, vector: np.ndarray | None) -> int:
        """Index one chunk on both sides under a new id (its vector pending without ``vector``); the catalog is the
        caller's."""
        chunk_id = self._next_id
        self._next_id += 1
        self._sparse.add(ids=[chunk_id], texts=[indexed_text(title=stored.title, text=stored.text, ref=ref)])
        if vector is None:
            self._pending.add(chunk_id)
        else:
            self._dense.add(ids=np.asarray([chunk_id], dtype=np.int64), vectors=vector)
        return chunk_id

    def _hit(self, chunk_id: int, *, score: float, sparse: float, dense: float) -> Hit:
        ref = self._catalog.chunks[chunk_id]
        stored = self._catalog.documents[ref.doc_id]
        return Hit(
            doc_id=ref.doc_id,
            ordinal=ref.ordinal,
            title=stored.title,
            url=stored.url,
            text=chunk_text(text=stored.text, ref=ref),
            start=ref.start,
            end=ref.end,
            score=score,
            scores={"sparse": sparse, "dense": dense},
        )
