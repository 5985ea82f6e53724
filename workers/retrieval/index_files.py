"""A hybrid index's directory: ``meta.json``, ``documents.jsonl`` (one document and its chunks a line) and the
sparse and dense sides' own files, replaced as a whole once a new copy is complete."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from workers.retrieval.catalog import ChunkRef, StoredDocument
from workers.retrieval.dense import DenseIndex
from workers.retrieval.sparse import SparseIndex


def write_index(
    *,
    directory: Path,
    meta: Mapping[str, Any],
    documents: Iterable[tuple[str, StoredDocument, Sequence[ChunkRef]]],
    sparse: SparseIndex,
    dense: DenseIndex,
) -> None:
    """Write the index to ``directory``, replacing the previous copy only once the new one is complete.
    ``documents``: each document's id, record and live chunks (in ``chunk_ids`` order)."""
    staging = directory.with_name(directory.name + ".saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    with (staging / "documents.jsonl").open("w", encoding="utf-8") as out:
        for doc_id, stored, live in documents:
            chunks = [[chunk_id, *_ref_row(ref)] for chunk_id, ref in zip(stored.chunk_ids, live, strict=True)]
            row: dict[str, Any] = {
                "id": doc_id,
                "title": stored.title,
                "url": stored.url,
                "text": stored.text,
                "chunks": chunks,
            }
            if stored.disabled:
                row["disabled"] = [_ref_row(ref) for ref in stored.disabled]
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    sparse.save(directory=staging)
    dense.save(directory=staging)
    previous = directory.with_name(directory.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if directory.exists():
        directory.rename(previous)
    staging.rename(directory)
    shutil.rmtree(previous, ignore_errors=True)


def read_meta(*, directory: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    return meta


def read_documents(*, directory: Path) -> Iterator[tuple[str, StoredDocument, dict[int, ChunkRef]]]:
    """Each saved document's id, record and live chunks by id."""
    with (directory / "documents.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            refs = {chunk_id: _ref_from_row(doc_id=row["id"], fields=fields) for chunk_id, *fields in row["chunks"]}
            disabled = tuple(_ref_from_row(doc_id=row["id"], fields=fields) for fields in row.get("disabled", ()))
            stored = StoredDocument(
                title=row["title"], url=row["url"], text=row["text"], chunk_ids=tuple(refs), disabled=disabled
            )
            yield row["id"], stored, refs


def _ref_row(ref: ChunkRef) -> list[object]:
    """[ordinal, start, end], then the heading when there is one or an edit follows, then {"text"} when edited."""
    row: list[object] = [ref.ordinal, ref.start, ref.end]
    if ref.heading or ref.text is not None:
        row.append(ref.heading)
    if ref.text is not None:
        row.append({"text": ref.text})
    return row


def _ref_from_row(*, doc_id: str, fields: Sequence[Any]) -> ChunkRef:
    """The inverse of ``_ref_row``; rows saved before edits existed end at the heading or before it."""
    ordinal, start, end, *extra = fields
    override = extra[1] if len(extra) > 1 else {}
    return ChunkRef(
        doc_id=doc_id,
        ordinal=int(ordinal),
        start=int(start),
        end=int(end),
        heading=str(extra[0]) if extra else "",
        text=override.get("text"),
    )
