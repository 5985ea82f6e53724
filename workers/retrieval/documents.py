"""Documents as the retrieval workers see them, and the JSONL corpora of the built-in plugins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    text: str
    url: str | None = None


def default_corpora_dir() -> Path:
    """``shared/corpora`` beside the repository checkout."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "corpora"


def read_jsonl(*, path: Path) -> Iterator[dict[str, Any]]:
    """The records of a JSONL file, one JSON object per line; blank lines are skipped."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def read_documents(*, path: Path) -> list[Document]:
    """One JSON document per line with at least ``id``, ``title`` and ``text``."""
    return [
        Document(id=record["id"], title=record.get("title") or "", text=record["text"], url=record.get("url"))
        for record in read_jsonl(path=path)
    ]
