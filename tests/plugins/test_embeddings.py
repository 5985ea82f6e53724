from __future__ import annotations

import numpy as np

from workers.retrieval.embeddings import Embedder


def test_embeddings_are_normalised_float32_and_the_model_is_shared() -> None:
    first, second = Embedder(batch_size=2), Embedder()

    vectors = first.embed(texts=["The cat sat on the mat.", "财务报表", "Revenue grew 12% in 2019."])

    assert vectors.shape == (3, first.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.allclose(second.embed(texts=["The cat sat on the mat."])[0], vectors[0], atol=1e-3)
    assert first._model is second._model
    assert first.embed(texts=[]).shape == (0, first.dimension)


def test_token_count_uses_the_model_tokenizer_and_its_length_limit() -> None:
    embedder = Embedder()

    assert embedder.count_tokens(texts=["hello world"]) == 4  # [CLS] hello world [SEP]
    assert embedder.count_tokens(texts=["word " * 1000]) == embedder._model.max_seq_length
