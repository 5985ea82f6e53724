from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workers.retrieval.dense import DenseIndex


def _vectors(count: int, dimension: int = 16) -> np.ndarray:
    vectors = np.random.default_rng(7).standard_normal((count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("hnsw_threshold", [10_000, 50])
def test_search_remove_and_reload(tmp_path: Path, hnsw_threshold: int) -> None:
    vectors = _vectors(120)
    index = DenseIndex(dimension=16, hnsw_threshold=hnsw_threshold)
    index.add(ids=np.arange(100, 160), vectors=vectors[:60])
    index.add(ids=np.arange(160, 220), vectors=vectors[60:])
    assert index.is_hnsw is (hnsw_threshold == 50)

    ids, scores = index.search(vector=vectors[5], limit=3)
    assert ids[0] == 105 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(index.scores_for(vector=vectors[5], ids=np.array([107, 200])), vectors[[7, 100]] @ vectors[5])

    index.remove(ids=[105, 106])
    assert len(index) == 118
    assert not {105, 106} & set(index.search(vector=vectors[5], limit=120)[0].tolist())

    index.save(directory=tmp_path)
    reloaded = DenseIndex.load(directory=tmp_path)
    assert reloaded.is_hnsw is index.is_hnsw
    assert (
        reloaded.search(vector=vectors[9], limit=5)[0].tolist() == index.search(vector=vectors[9], limit=5)[0].tolist()
    )


def test_hnsw_tombstones_are_compacted_away() -> None:
    vectors = _vectors(100)
    index = DenseIndex(dimension=16, hnsw_threshold=50)
    index.add(ids=np.arange(100), vectors=vectors)
    index.remove(ids=range(30))

    assert len(index) == 70 and index.is_hnsw
    found = index.search(vector=vectors[0], limit=100)[0]
    assert len(found) == 70 and found.min() >= 30
