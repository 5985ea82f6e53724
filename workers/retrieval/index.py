"""Per-plugin hybrid index: chunks scored by BM25 (sparse) and embeddings (dense), kept in one directory.

Scoring of a query, per candidate chunk (candidates = the sparse top ``pool`` ∪ the dense top ``pool``):

- sparse: BM25 divided by the best BM25 over all matching chunks (so in [0, 1]); with the profile's
  ``document_weight`` w, the chunk's document's best such score is added and the sum divided by 1 + w;
- dense: cosine similarity of the L2-normalised embeddings mapped to (cos − f) / (best − f), f the embedding
  model's ``cosine_floor`` (0 for MiniLM, 0.82 for e5, whose unrelated texts still reach ~0.8), so that both
  sides put their best candidate at 1 (measured on the dev sets: better than raw cosine, far better than rank
  fusion);
- hybrid: ``(tfidf_weight × sparse + embedding_weight × dense) × prior``, where the prior of a document's
  chunks is ``1 + citation_weight × ln(1 + n)``, n = the other documents in the index that cite it as
  《title》 (a title's trailing （…） qualifier is ignored, so the books of the Civil Code share the Code's
  citations). Counts follow every add and delete.

A side whose weight is 0 is not computed at all (no query embedding for pure BM25).

Chunks can be added without vectors (``add_documents(embed=False)``): they are searchable by BM25 at once,
and ``pending_dense`` lists what the dense side still lacks. Until it is complete (``dense_ready``) searches
run on the sparse side alone, so a half-built dense side never skews the ranking.

Single chunks can be edited (``edit_chunk``: a text override replacing the document's span) and disabled
(``set_chunk_enabled``: kept, but out of both sides). Either way the chunk is re-indexed under a new id, so a
vector computed in the background for its old text (``add_vectors``) is never taken for the new one.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from workers.retrieval.chunking import chunk_document
from workers.retrieval.dense import DenseIndex
from workers.retrieval.documents import Document
from workers.retrieval.embeddings import TextEmbedder, load_embedder
from workers.retrieval.profiles import RetrievalProfile, upgraded
from workers.retrieval.sparse import SparseIndex, SparseScores

# Candidates taken from each side, whatever top_k: fusion needs the other side's near misses too (law dev
# recall@100: 0.793 with 100, 0.804 with 200, 0.812 with 400; p50 latency unchanged at ~9 ms).
_MIN_POOL = 400
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
class ChunkState:
    """One chunk of a document as the index holds it."""

    ordinal: int
    text: str
    start: int
    end: int
    enabled: bool
    edited: bool


@dataclass(frozen=True, slots=True)
class ChunkOverride:
    """How one chunk (by ordinal) differs from the document's chunking: its edited text, or disabled."""

    text: str | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class _ChunkRef:
    doc_id: str
    ordinal: int
    start: int
    end: int
    heading: str = ""
    text: str | None = None  # an edited chunk's text, instead of the document's [start:end]


@dataclass(frozen=True, slots=True)
class _StoredDocument:
    title: str
    url: str | None
    text: str
    chunk_ids: tuple[int, ...]  # the live chunks, by ordinal
    disabled: tuple[_ChunkRef, ...] = ()  # out of both sides, by ordinal


class HybridIndex:
    """Not thread-safe: one writer per index directory, and no search while a write is under way."""

    def __init__(self, *, directory: Path, profile: RetrievalProfile, embedder: TextEmbedder | None = None) -> None:
        self.directory = Path(directory)
        self.profile = profile
        self.embedder = embedder or load_embedder()
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
        # Live chunks with no vector yet (added with embed=False, or all of them after reset_dense).
        self._pending: set[int] = set()

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._documents

    @property
    def dense_ready(self) -> bool:
        return not self._pending

    def pending_dense(self) -> list[tuple[int, str]]:
        """(chunk id, text to embed) of the live chunks that have no vector yet, in id order."""
        return [(chunk_id, self.profile.dense_text(self._indexed_text(chunk_id))) for chunk_id in sorted(self._pending)]

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
        self._pending = set(self._chunks)

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
        pending: dict[str, tuple[Document, list[_ChunkRef], list[_ChunkRef]]] = {}
        for document in documents:
            edits = (overrides or {}).get(document.id, {})
            live: list[_ChunkRef] = []
            disabled: list[_ChunkRef] = []
            for chunk in chunk_document(
                text=document.text,
                title=document.title,
                kind=self.profile.chunk_kind,
                max_tokens=self.profile.max_tokens,
                overlap=self.profile.overlap,
            ):
                edit = edits.get(chunk.ordinal) or ChunkOverride()
                ref = _ChunkRef(
                    doc_id=document.id,
                    ordinal=chunk.ordinal,
                    start=chunk.start,
                    end=chunk.end,
                    heading=chunk.heading,
                    text=edit.text,
                )
                (live if edit.enabled else disabled).append(ref)
            pending[document.id] = (document, live, disabled)
        indexed_texts = [
            _indexed(title=document.title, text=document.text, ref=ref)
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
            self._remember(
                doc_id=document.id,
                stored=_StoredDocument(
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
        stored = self._documents.get(external_id)
        if stored is None:
            return []
        refs = [(self._chunks[chunk_id], True) for chunk_id in stored.chunk_ids]
        refs += [(ref, False) for ref in stored.disabled]
        return [
            ChunkState(
                ordinal=ref.ordinal,
                text=_chunk_text(text=stored.text, ref=ref),
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
        stored, chunk_id, ref = self._locate(external_id=external_id, ordinal=ordinal)
        edited = replace(ref, text=None if text == stored.text[ref.start : ref.end] else text)
        if edited == ref:
            return False
        if chunk_id is None:
            disabled = tuple(edited if r.ordinal == ordinal else r for r in stored.disabled)
            self._documents[external_id] = replace(stored, disabled=disabled)
            return True
        vector = self._vector_now(stored=stored, ref=edited, embed=embed)
        self._drop_live(chunk_id)
        new_id = self._add_live(stored=stored, ref=edited, vector=vector)
        self._documents[external_id] = replace(
            stored, chunk_ids=self._by_ordinal(new_id if c == chunk_id else c for c in stored.chunk_ids)
        )
        return True

    def set_chunk_enabled(self, *, external_id: str, ordinal: int, enabled: bool, embed: bool = True) -> bool:
        """Take a chunk out of both sides (kept, with its text) or put it back, embedded as ``edit_chunk``
        does. Returns whether anything changed; raises KeyError for an unknown document or ordinal."""
        stored, chunk_id, ref = self._locate(external_id=external_id, ordinal=ordinal)
        if enabled == (chunk_id is not None):
            return False
        if chunk_id is not None:
            self._drop_live(chunk_id)
            self._documents[external_id] = replace(
                stored,
                chunk_ids=tuple(c for c in stored.chunk_ids if c != chunk_id),
                disabled=tuple(sorted((*stored.disabled, ref), key=lambda r: r.ordinal)),
            )
            return True
        vector = self._vector_now(stored=stored, ref=ref, embed=embed)
        new_id = self._add_live(stored=stored, ref=ref, vector=vector)
        self._documents[external_id] = replace(
            stored,
            chunk_ids=self._by_ordinal((*stored.chunk_ids, new_id)),
            disabled=tuple(r for r in stored.disabled if r.ordinal != ordinal),
        )
        return True

    def delete_document(self, *, external_id: str) -> bool:
        stored = self._documents.pop(external_id, None)
        if stored is None:
            return False
        self._sparse.remove(ids=stored.chunk_ids)
        self._dense.remove(ids=[c for c in stored.chunk_ids if c not in self._pending])
        self._pending.difference_update(stored.chunk_ids)
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
        """Best ``top_k`` chunks; weights default to the profile's (see ``profiles.default_weights``). While
        the dense side is incomplete, the sparse side alone ranks (``dense_ready``).

        With ``allowed_ids`` (documents' external ids), only those documents' chunks are scored and ranked, as
        if the index held nothing else (normalisation included); idf and the citation prior stay index-wide."""
        sparse_weight = self.profile.tfidf_weight if tfidf_weight is None else tfidf_weight
        dense_weight = self.profile.embedding_weight if embedding_weight is None else embedding_weight
        if sparse_weight < 0 or dense_weight < 0 or sparse_weight + dense_weight == 0:
            raise ValueError("tfidf_weight and embedding_weight must be >= 0 and not both 0")
        if top_k <= 0 or not self._chunks:
            return []
        if self._pending and dense_weight:
            sparse_weight, dense_weight = sparse_weight or 1.0, 0.0
        allowed = None
        if allowed_ids is not None:
            allowed = np.asarray(
                sorted(
                    c for doc_id in allowed_ids if doc_id in self._documents for c in self._documents[doc_id].chunk_ids
                ),
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
            query_vector = self.embedder.embed_queries(texts=[query])[0]
            candidates.append(self._dense.search(vector=query_vector, limit=pool, allowed=allowed)[0])
        ids = np.unique(np.concatenate(candidates))
        sparse_scores = sparse.lookup(ids=ids) if sparse is not None else np.zeros(len(ids), dtype=np.float32)
        dense_scores = np.zeros(len(ids), dtype=np.float32)
        if query_vector is not None and len(ids):
            dense_scores = self._dense_relevance(self._dense.scores_for(vector=query_vector, ids=ids))
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
            "embedding_model": self.embedder.model_path,
            "dimension": self.embedder.dimension,
            "next_id": self._next_id,
            "pending_dense": sorted(self._pending),
        }
        (staging / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        with (staging / "documents.jsonl").open("w", encoding="utf-8") as out:
            for doc_id, stored in self._documents.items():
                chunks = [[chunk_id, *_ref_row(self._chunks[chunk_id])] for chunk_id in stored.chunk_ids]
                row = {
                    "id": doc_id,
                    "title": stored.title,
                    "url": stored.url,
                    "text": stored.text,
                    "chunks": chunks,
                }
                if stored.disabled:
                    row["disabled"] = [_ref_row(ref) for ref in stored.disabled]
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
    def load(cls, *, directory: Path, embedder: TextEmbedder | None = None) -> HybridIndex:
        """Open a saved index; without ``embedder``, one for the model recorded at save time."""
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
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
        with (directory / "documents.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                refs = {chunk_id: _ref_from_row(doc_id=row["id"], fields=fields) for chunk_id, *fields in row["chunks"]}
                disabled = tuple(_ref_from_row(doc_id=row["id"], fields=fields) for fields in row.get("disabled", ()))
                stored = _StoredDocument(
                    title=row["title"], url=row["url"], text=row["text"], chunk_ids=tuple(refs), disabled=disabled
                )
                index._remember(doc_id=row["id"], stored=stored, chunks=refs)
        return index

    def _remember(self, *, doc_id: str, stored: _StoredDocument, chunks: dict[int, _ChunkRef]) -> None:
        self._grow_slots()
        self._documents[doc_id] = stored
        self._chunks.update(chunks)
        self._doc_slot[list(chunks)] = self._slots.setdefault(doc_id, len(self._slots))
        if self.profile.citation_weight:
            cited = frozenset(map(citation_key, _CITED_TITLE.findall(stored.text))) - {citation_key(stored.title)}
            self._cites[doc_id] = cited
            self._cited_by.update(cited)
        self._prior = None

    def _grow_slots(self) -> None:
        if len(self._doc_slot) < self._next_id:
            grow = self._next_id - len(self._doc_slot)
            self._doc_slot = np.concatenate([self._doc_slot, np.zeros(grow, dtype=np.int64)])

    def _locate(self, *, external_id: str, ordinal: int) -> tuple[_StoredDocument, int | None, _ChunkRef]:
        """The document, the chunk's live id (None when disabled) and its ref."""
        stored = self._documents[external_id]
        for chunk_id in stored.chunk_ids:
            if self._chunks[chunk_id].ordinal == ordinal:
                return stored, chunk_id, self._chunks[chunk_id]
        for ref in stored.disabled:
            if ref.ordinal == ordinal:
                return stored, None, ref
        raise KeyError(f"document {external_id!r} has no chunk {ordinal}")

    def _by_ordinal(self, chunk_ids: Iterable[int]) -> tuple[int, ...]:
        return tuple(sorted(chunk_ids, key=lambda chunk_id: self._chunks[chunk_id].ordinal))

    def _vector_now(self, *, stored: _StoredDocument, ref: _ChunkRef, embed: bool) -> np.ndarray | None:
        """The chunk's vector when it is to be embedded now: never while other chunks wait for theirs, as the
        background build would then have to tell which model made it."""
        if not embed or not self.dense_ready:
            return None
        return self.embedder.embed_passages(
            texts=[self.profile.dense_text(_indexed(title=stored.title, text=stored.text, ref=ref))]
        )

    def _drop_live(self, chunk_id: int) -> None:
        self._sparse.remove(ids=[chunk_id])
        if chunk_id in self._pending:
            self._pending.discard(chunk_id)
        else:
            self._dense.remove(ids=[chunk_id])
        del self._chunks[chunk_id]

    def _add_live(self, *, stored: _StoredDocument, ref: _ChunkRef, vector: np.ndarray | None) -> int:
        """Index one chunk under a new id (on the dense side too when ``vector`` is given, else pending)."""
        chunk_id = self._next_id
        self._next_id += 1
        self._sparse.add(ids=[chunk_id], texts=[_indexed(title=stored.title, text=stored.text, ref=ref)])
        if vector is None:
            self._pending.add(chunk_id)
        else:
            self._dense.add(ids=np.asarray([chunk_id], dtype=np.int64), vectors=vector)
        self._chunks[chunk_id] = ref
        self._grow_slots()
        self._doc_slot[chunk_id] = self._slots[ref.doc_id]
        return chunk_id

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

    def _dense_relevance(self, cosines: np.ndarray) -> np.ndarray:
        """Cosines mapped so the best candidate scores 1 and the model's ``cosine_floor`` (what unrelated texts
        reach with it: e5 puts them near 0.8, which would otherwise leave every candidate's dense score within a
        few percent of 1) or less scores 0."""
        floor = self.embedder.cosine_floor
        best = float(cosines.max())
        if best <= floor:
            return np.zeros_like(cosines)
        return np.clip((cosines - floor) / (best - floor), 0.0, 1.0).astype(np.float32)

    def _indexed_text(self, chunk_id: int) -> str:
        ref = self._chunks[chunk_id]
        stored = self._documents[ref.doc_id]
        return _indexed(title=stored.title, text=stored.text, ref=ref)

    def _hit(self, chunk_id: int, *, score: float, sparse: float, dense: float) -> Hit:
        ref = self._chunks[chunk_id]
        stored = self._documents[ref.doc_id]
        return Hit(
            doc_id=ref.doc_id,
            ordinal=ref.ordinal,
            title=stored.title,
            url=stored.url,
            text=_chunk_text(text=stored.text, ref=ref),
            start=ref.start,
            end=ref.end,
            score=score,
            scores={"sparse": sparse, "dense": dense},
        )


def _chunk_text(*, text: str, ref: _ChunkRef) -> str:
    return text[ref.start : ref.end] if ref.text is None else ref.text


def _indexed(*, title: str, text: str, ref: _ChunkRef) -> str:
    """What a chunk is indexed and embedded as: ``chunking.Chunk.indexed_text``, with its edited text if any."""
    return "\n".join(part for part in (title, ref.heading, _chunk_text(text=text, ref=ref)) if part)


def _ref_row(ref: _ChunkRef) -> list[object]:
    """[ordinal, start, end], then the heading when there is one or an edit follows, then {"text"} when edited."""
    row: list[object] = [ref.ordinal, ref.start, ref.end]
    if ref.heading or ref.text is not None:
        row.append(ref.heading)
    if ref.text is not None:
        row.append({"text": ref.text})
    return row


def _ref_from_row(*, doc_id: str, fields: Sequence[Any]) -> _ChunkRef:
    """The inverse of ``_ref_row``; rows saved before edits existed end at the heading or before it."""
    ordinal, start, end, *extra = fields
    override = extra[1] if len(extra) > 1 else {}
    return _ChunkRef(
        doc_id=doc_id,
        ordinal=int(ordinal),
        start=int(start),
        end=int(end),
        heading=str(extra[0]) if extra else "",
        text=override.get("text"),
    )
