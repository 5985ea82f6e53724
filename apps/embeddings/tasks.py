from __future__ import annotations

from typing import Any

from celery import shared_task
from typing_extensions import TypeIs

from workers.retrieval.embeddings import INPUT_TYPES, TokenIdError, UnsupportedInputError, load_embedder

EmbeddingInputs = list[str] | list[list[int]]


def _are_token_ids(texts: EmbeddingInputs) -> TypeIs[list[list[int]]]:
    return bool(texts) and isinstance(texts[0], list)


def embed_texts(*, model_dir: str, texts: EmbeddingInputs, input_type: str | None = None) -> dict[str, Any]:
    """Vectors and tokens read for strings, or for token-id arrays of the model's own tokenizer. Input the model
    cannot take is answered as ``{"error": message, "code": ...}`` (only the worker, which loads the model,
    knows)."""
    embedder = load_embedder(model_dir)
    if _are_token_ids(texts):
        try:
            vectors, tokens = embedder.embed_token_ids(token_ids=texts)
        except TokenIdError as exc:
            return {"error": str(exc), "code": "invalid_token_id"}
        except UnsupportedInputError as exc:
            return {"error": str(exc), "code": "unsupported_input"}
        return {"vectors": vectors.tolist(), "tokens": tokens}
    kind = INPUT_TYPES.get(input_type) if input_type else None
    return {
        "vectors": embedder.embed_inputs(texts=texts, input_type=kind).tolist(),
        "tokens": embedder.count_tokens(texts=texts, input_type=kind),
    }


@shared_task(name="embeddings.embed")
def embed_task(model_dir: str, texts: EmbeddingInputs, input_type: str | None = None) -> dict[str, Any]:
    return embed_texts(model_dir=model_dir, texts=texts, input_type=input_type)
