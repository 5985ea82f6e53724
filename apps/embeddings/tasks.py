from __future__ import annotations

from typing import Any

from celery import shared_task

from workers.retrieval.embeddings import Embedder


def embed_texts(*, model_dir: str, texts: list[str]) -> dict[str, Any]:
    embedder = Embedder(model_dir=model_dir)
    return {"vectors": embedder.embed(texts=texts).tolist(), "tokens": embedder.count_tokens(texts=texts)}


@shared_task(name="embeddings.embed")
def embed_task(model_dir: str, texts: list[str]) -> dict[str, Any]:
    return embed_texts(model_dir=model_dir, texts=texts)
