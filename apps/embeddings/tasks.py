from __future__ import annotations

from typing import Any

from celery import shared_task

from workers.retrieval.embeddings import Embedder, TokenIdError

EmbeddingInputs = list[str] | list[list[int]]


def embed_texts(*, model_dir: str, texts: EmbeddingInputs) -> dict[str, Any]:
    """Vectors and tokens read for strings, or for token-id arrays of the model's own tokenizer. An id outside
    its vocabulary is answered as ``{"error": message}`` (only the worker, which loads the tokenizer, knows)."""
    embedder = Embedder(model_dir=model_dir)
    if texts and isinstance(texts[0], list):
        try:
            vectors, tokens = embedder.embed_token_ids(token_ids=texts)
        except TokenIdError as exc:
            return {"error": str(exc)}
        return {"vectors": vectors.tolist(), "tokens": tokens}
    return {"vectors": embedder.embed(texts=texts).tolist(), "tokens": embedder.count_tokens(texts=texts)}


@shared_task(name="embeddings.embed")
def embed_task(model_dir: str, texts: EmbeddingInputs) -> dict[str, Any]:
    return embed_texts(model_dir=model_dir, texts=texts)
