"""What a hybrid index holds, apart from its two search sides: the documents and their live chunks by id, each
chunk's document slot (for document-level scores) and the documents' citation prior."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from workers.retrieval.documents import Document
from workers.retrieval.fusion import citation_prior, cited_names
from workers.retrieval.profiles import RetrievalProfile


@dataclass(frozen=True, slots=True)
class ChunkOverride:
    """How one chunk (by ordinal) differs from the document's chunking: its edited text, or disabled."""

    text: str | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class ChunkRef:
    doc_id: str
    ordinal: int
    start: int
    end: int
    heading: str = ""
    text: str | None = None  # an edited chunk's text, instead of the document's [start:end]


@dataclass(frozen=True, slots=True)
class StoredDocument:
    title: str
    url: str | None
    text: str
    chunk_ids: tuple[int, ...]  # the live chunks, by ordinal
    disabled: tuple[ChunkRef, ...] = ()  # out of both sides, by ordinal


def chunk_text(*, text: str, ref: ChunkRef) -> str:
    return text[ref.start : ref.end] if ref.text is None else ref.text


def indexed_text(*, title: str, text: str, ref: ChunkRef) -> str:
    """What a chunk is indexed and embedded as: ``chunking.Chunk.indexed_text``, with its edited text if any."""
    return "\n".join(part for part in (title, ref.heading, chunk_text(text=text, ref=ref)) if part)


def document_refs(
    *, document: Document, profile: RetrievalProfile, edits: Mapping[int, ChunkOverride]
) -> tuple[list[ChunkRef], list[ChunkRef]]:
    """The document's chunks as the profile cuts them, with their ``edits`` (by ordinal): live, disabled."""
    live: list[ChunkRef] = []
    disabled: list[ChunkRef] = []
    for chunk in profile.chunk(text=document.text, title=document.title):
        edit = edits.get(chunk.ordinal) or ChunkOverride()
        ref = ChunkRef(
            doc_id=document.id,
            ordinal=chunk.ordinal,
            start=chunk.start,
            end=chunk.end,
            heading=chunk.heading,
            text=edit.text,
        )
        (live if edit.enabled else disabled).append(ref)
    return live, disabled


class ChunkCatalog:
    """Documents by external id, live chunks by chunk id (ids are never reused). Citation counts follow every
    change; the prior is recomputed on the first use after one."""

    def __init__(self, *, citation_weight: float) -> None:
        self.citation_weight = citation_weight
        self.documents: dict[str, StoredDocument] = {}
        self.chunks: dict[int, ChunkRef] = {}
        # Indexed by chunk id: the chunk's document slot. A document keeps its slot when it is replaced.
        self._doc_slot = np.zeros(0, dtype=np.int64)
        self._slots: dict[str, int] = {}
        # The names each document cites, and how many documents cite each name.
        self._cites: dict[str, frozenset[str]] = {}
        self._cited_by: Counter[str] = Counter()
        self._prior: np.ndarray | None = None

    @property
    def slot_count(self) -> int:
        return len(self._slots)

    def slots(self, ids: np.ndarray) -> np.ndarray:
        """The document slot of each chunk id."""
        return self._doc_slot[ids]

    def remember(self, *, doc_id: str, stored: StoredDocument, chunks: dict[int, ChunkRef]) -> None:
        """Hold a document (not held already) and its live chunks."""
        self._grow_slots(max(chunks, default=-1) + 1)
        self.documents[doc_id] = stored
        self.chunks.update(chunks)
        self._doc_slot[list(chunks)] = self._slots.setdefault(doc_id, len(self._slots))
        if self.citation_weight:
            cited = cited_names(title=stored.title, text=stored.text)
            self._cites[doc_id] = cited
            self._cited_by.update(cited)
        self._prior = None

    def forget(self, *, doc_id: str) -> StoredDocument | None:
        """Drop a document and its live chunks; returns it, or None when it was not held."""
        stored = self.documents.pop(doc_id, None)
        if stored is None:
            return None
        for chunk_id in stored.chunk_ids:
            del self.chunks[chunk_id]
        self._cited_by.subtract(self._cites.pop(doc_id, frozenset()))
        self._prior = None
        return stored

    def replace_live(self, *, chunk_id: int, new_id: int, ref: ChunkRef) -> None:
        """A live chunk's new version, under a new id."""
        del self.chunks[chunk_id]
        self._add_chunk(chunk_id=new_id, ref=ref)
        stored = self.documents[ref.doc_id]
        chunk_ids = self.by_ordinal(new_id if c == chunk_id else c for c in stored.chunk_ids)
        self.documents[ref.doc_id] = replace(stored, chunk_ids=chunk_ids)

    def replace_disabled(self, *, ref: ChunkRef) -> None:
        """A disabled chunk's new version."""
        stored = self.documents[ref.doc_id]
        disabled = tuple(ref if r.ordinal == ref.ordinal else r for r in stored.disabled)
        self.documents[ref.doc_id] = replace(stored, disabled=disabled)

    def disable(self, *, chunk_id: int) -> None:
        ref = self.chunks.pop(chunk_id)
        stored = self.documents[ref.doc_id]
        self.documents[ref.doc_id] = replace(
            stored,
            chunk_ids=tuple(c for c in stored.chunk_ids if c != chunk_id),
            disabled=tuple(sorted((*stored.disabled, ref), key=lambda r: r.ordinal)),
        )

    def enable(self, *, new_id: int, ref: ChunkRef) -> None:
        """A disabled chunk live again, under a new id."""
        self._add_chunk(chunk_id=new_id, ref=ref)
        stored = self.documents[ref.doc_id]
        self.documents[ref.doc_id] = replace(
            stored,
            chunk_ids=self.by_ordinal((*stored.chunk_ids, new_id)),
            disabled=tuple(r for r in stored.disabled if r.ordinal != ref.ordinal),
        )

    def locate(self, *, doc_id: str, ordinal: int) -> tuple[StoredDocument, int | None, ChunkRef]:
        """The document, the chunk's live id (None when disabled) and its ref."""
        stored = self.documents[doc_id]
        for chunk_id in stored.chunk_ids:
            if self.chunks[chunk_id].ordinal == ordinal:
                return stored, chunk_id, self.chunks[chunk_id]
        for ref in stored.disabled:
            if ref.ordinal == ordinal:
                return stored, None, ref
        raise KeyError(f"document {doc_id!r} has no chunk {ordinal}")

    def by_ordinal(self, chunk_ids: Iterable[int]) -> tuple[int, ...]:
        return tuple(sorted(chunk_ids, key=lambda chunk_id: self.chunks[chunk_id].ordinal))

    def chunk_ids_of(self, doc_ids: Iterable[str]) -> np.ndarray:
        """The live chunk ids of those of ``doc_ids`` that are held, ascending."""
        held = (self.documents[doc_id] for doc_id in doc_ids if doc_id in self.documents)
        return np.asarray(sorted(c for stored in held for c in stored.chunk_ids), dtype=np.int64)

    def indexed_text(self, chunk_id: int) -> str:
        ref = self.chunks[chunk_id]
        stored = self.documents[ref.doc_id]
        return indexed_text(title=stored.title, text=stored.text, ref=ref)

    def prior(self) -> np.ndarray:
        """Per document slot, the factor its chunks' scores are multiplied by."""
        if self._prior is None:
            self._prior = citation_prior(
                slot_count=len(self._slots),
                titles=((self._slots[doc_id], stored.title) for doc_id, stored in self.documents.items()),
                cited_by=self._cited_by,
                weight=self.citation_weight,
            )
        return self._prior

    def _add_chunk(self, *, chunk_id: int, ref: ChunkRef) -> None:
        self.chunks[chunk_id] = ref
        self._grow_slots(chunk_id + 1)
        self._doc_slot[chunk_id] = self._slots[ref.doc_id]

    def _grow_slots(self, size: int) -> None:
        if len(self._doc_slot) < size:
            self._doc_slot = np.concatenate([self._doc_slot, np.zeros(size - len(self._doc_slot), dtype=np.int64)])
