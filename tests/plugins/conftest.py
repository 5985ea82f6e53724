"""Fixtures for the retrieval (rethink plugin) worker tests: small samples of the real corpora and a
deterministic stand-in embedder, so that only the tests about embeddings load the real model."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from workers.retrieval.analyzer import Analyzer
from workers.retrieval.documents import Document, default_corpora_dir
from workers.retrieval.embeddings import Embedder

CORPORA = default_corpora_dir()


def _sample(name: str, count: int) -> list[Document]:
    path = CORPORA / f"{name}.jsonl"
    if not path.exists():
        pytest.skip(f"corpus {path} is not checked out")
    with path.open(encoding="utf-8") as lines:
        records = [json.loads(line) for line in itertools.islice(lines, count)]
    return [Document(id=r["id"], title=r["title"], text=r["text"], url=r.get("url")) for r in records]


@pytest.fixture(scope="session")
def law_sample() -> list[Document]:
    """The first 25 laws: the Criminal Law (编/章/节 and 500 articles), amendments without article
    lines, and a forensic standard structured by markdown headings only."""
    return _sample("law", 25)


@pytest.fixture(scope="session")
def finance_sample() -> list[Document]:
    return _sample("finance", 40)


@pytest.fixture(scope="session")
def wiki_sample() -> list[Document]:
    return _sample("wiki", 40)


class HashEmbedder(Embedder):
    """Bag of hashed analyzer terms, L2-normalised: texts sharing terms get similar vectors."""

    def __init__(self, dimension: int = 64) -> None:
        super().__init__(model_dir=Path(__file__).parent)
        self._dimension = dimension
        self._analyzer = Analyzer()

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed(self, *, texts: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in self._analyzer.terms(text=text):
                vectors[
                    row, int(hashlib.md5(term.encode(), usedforsecurity=False).hexdigest()[:8], 16) % self._dimension
                ] += 1.0
        vectors[:, 0] += 1e-3  # no all-zero rows
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


# --- API tests of apps/plugins -----------------------------------------------------------------------------

from tests.chat.conftest import chatty_model  # noqa: E402,F401  (a tiny real chat model, built once per session)
from tests.conftest import SHARED_DIR  # noqa: E402

CRAZYONES_PDF = SHARED_DIR / "fixtures" / "pdf" / "pypdf" / "resources" / "crazyones.pdf"


@pytest.fixture(scope="session")
def crazyones_pdf() -> bytes:
    """A real one-page PDF from the shared fixtures."""
    if not CRAZYONES_PDF.is_file():
        pytest.skip(f"shared PDF fixture not found at {CRAZYONES_PDF}")
    return CRAZYONES_PDF.read_bytes()


@pytest.fixture
def chatty_endpoint(db: None, chatty_model: Path):  # noqa: F811
    from apps.chat.models import ModelEndpoint

    return ModelEndpoint.objects.create(
        name="chatty",
        family="tigerbot",
        path=str(chatty_model),
        is_default=True,
        max_new_tokens=16,
        max_input_tokens=256,
    )


@pytest.fixture
def plugin_indexes():
    """Each test starts and ends with an empty process-wide index cache."""
    from apps.plugins import indexes

    indexes.forget()
    yield indexes
    indexes.forget()
