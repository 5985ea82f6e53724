from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db.models import QuerySet

from apps.chat.models import ModelEndpoint
from apps.chat.registry import model_sources
from apps.core import storage
from workers.errors import InvalidRequest, NotFound
from workers.runtime.specs import Backend, Dtype, Family, ModelSpec, Quantization


@dataclass(frozen=True)
class ServedModel:
    """A model a caller may use: its public id, its runtime spec and who owns it."""

    id: str
    spec: ModelSpec
    owned_by: str
    created: int


def resolve_model_path(path: str) -> str:
    """Relative checkpoint paths are relative to MODELS_DIR."""
    return str(path if not path or Path(path).is_absolute() else Path(settings.MODELS_DIR) / path)


def endpoint_spec(endpoint: ModelEndpoint) -> ModelSpec:
    # The model's choices are the spec's literals; ModelSpec checks them again when built.
    return ModelSpec(
        name=endpoint.name,
        family=cast(Family, endpoint.family),
        backend=cast(Backend, endpoint.backend),
        path=resolve_model_path(endpoint.path),
        base_url=endpoint.base_url,
        api_key=endpoint.upstream_api_key,
        upstream_model=endpoint.upstream_model or endpoint.name,
        dtype=cast(Dtype, endpoint.dtype),
        quantization=cast(Quantization, endpoint.quantization),
        rope_scaling=endpoint.rope_scaling,
        max_input_tokens=endpoint.max_input_tokens,
        max_new_tokens=endpoint.max_new_tokens,
        replica_urls=tuple(endpoint.replica_urls or ()),
        serve_url=endpoint.serve_url,
    )


def vllm_adapter_path(path: str) -> str:
    """Where vLLM reads the adapter at ``path``: under VLLM_ADAPTER_ROOT when that is where vLLM mounts
    FINETUNE_DIR; the same path when unset (a shared filesystem) or when the adapter lies elsewhere."""
    root = settings.VLLM_ADAPTER_ROOT
    if storage.is_stored_ref(path):
        # In shared storage under finetunes/<job>/...: vLLM mounts a copy of it at VLLM_ADAPTER_ROOT, or (unset)
        # shares this host's disk, where the adapter is fetched into the cache.
        relative = PurePosixPath(path.removeprefix(storage.STORED_REF)).relative_to("finetunes")
        return str(PurePosixPath(root) / relative) if root else str(storage.fetched_dir(ref=path))
    if not root:
        return path
    try:
        inside = Path(path).resolve().relative_to(Path(settings.FINETUNE_DIR).resolve())
    except ValueError:
        return path
    return str(PurePosixPath(root) / PurePosixPath(inside.as_posix()))


def local_model_spec(spec: ModelSpec) -> ModelSpec:
    """The spec as this host loads it: a fine-tuned adapter or weights kept in shared storage
    (``storage:<prefix>``) replaced by its copy in this host's cache, fetched on first use. An upstream model is
    loaded by its server, from its own paths: unchanged."""
    if spec.backend == "openai-upstream":
        return spec

    if not (storage.is_stored_ref(spec.path) or storage.is_stored_ref(spec.adapter_path)):
        return spec  # the common case, on every generation: no copy of the spec

    def local(path: str) -> str:
        return str(storage.fetched_dir(ref=path)) if storage.is_stored_ref(path) else path

    return replace(spec, path=local(spec.path), adapter_path=local(spec.adapter_path))


def serving_spec(*, spec: ModelSpec) -> ModelSpec:
    """The spec as it is answered: a local checkpoint with a ``serve_url`` becomes an upstream spec for that
    server, its LoRA adapter (if any) a vLLM LoRA named after the model, at the path vLLM reads it from."""
    if spec.backend != "local" or not spec.serve_url:
        return spec
    adapter = spec.adapter_path
    return replace(
        spec,
        backend="openai-upstream",
        base_url=spec.serve_url,
        upstream_model=spec.name if adapter else spec.upstream_model,
        adapter_path=vllm_adapter_path(adapter) if adapter else "",
    )


def _served(endpoint: ModelEndpoint) -> ServedModel:
    return ServedModel(
        id=endpoint.name,
        spec=endpoint_spec(endpoint),
        owned_by=endpoint.owned_by,
        created=int(endpoint.created_at.timestamp()),
    )


def model_endpoint_list(*, kind: str | None = None) -> QuerySet[ModelEndpoint]:
    endpoints = ModelEndpoint.objects.filter(enabled=True)
    return endpoints.filter(kind=kind) if kind else endpoints


def model_endpoint_of_kind_get(
    *, kind: str, model: Any, param: str = "model", sole_is_default: bool = False
) -> ModelEndpoint:
    """The enabled model of ``kind`` called ``model``; when None, the default one (or, with ``sole_is_default``,
    the only one). Unknown: 404 ``model_not_found``; a model of another kind: 400 ``not_a(n)_<kind>_model``."""
    endpoints = model_endpoint_list(kind=kind)
    if model is None:
        only = list(endpoints[:2]) if sole_is_default else []
        endpoint = endpoints.filter(is_default=True).first() or (only[0] if len(only) == 1 else None)
        if endpoint is None:
            raise InvalidRequest(
                f"No default {kind} model is configured; pass `model`.", code="model_required", param=param
            )
        return endpoint
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest(f"{param} must name {_a(kind)} {kind} model.", param=param)
    endpoint = endpoints.filter(name=model).first()
    if endpoint is not None:
        return endpoint
    other = model_endpoint_list().filter(name=model).first()
    if other is not None:
        raise InvalidRequest(
            f"{model!r} is {_a(other.kind)} {other.kind} model, not {_a(kind)} {kind} model.",
            code=f"not_{_a(kind)}_{kind}_model",
            param=param,
        )
    raise NotFound(f"The {kind} model {model!r} does not exist.", code="model_not_found", param=param)


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def model_object(*, id: str, created: int, owned_by: str) -> dict[str, object]:
    return {"id": id, "object": "model", "created": created, "owned_by": owned_by}


def model_list(*, user: AbstractUser) -> list[dict[str, object]]:
    """Every model the caller may use, in OpenAI's model-object shape."""
    rows = [
        model_object(id=e.name, created=int(e.created_at.timestamp()), owned_by=e.owned_by)
        for e in model_endpoint_list()
    ]
    for source in model_sources():
        rows += source.list_for(user=user)
    return rows


def model_get(*, user: AbstractUser, model_id: str) -> dict[str, object]:
    """One of the models ``model_list`` lists (so the list and the detail always agree); any other id, another
    tenant's fine-tuned model included, is a 404 model_not_found."""
    found = next((row for row in model_list(user=user) if row["id"] == model_id), None)
    if found is None:
        raise NotFound(
            f"The model {model_id!r} does not exist or you do not have access to it.",
            code="model_not_found",
            param="model",
        )
    return found


def chat_model_get(*, user: AbstractUser, model: str | None) -> ServedModel:
    """The chat model called ``model`` (the default one when None); unknown ids answer 404 model_not_found."""
    if model is None:
        endpoint = model_endpoint_list(kind=ModelEndpoint.Kind.CHAT).filter(is_default=True).first()
        if endpoint is None:
            raise InvalidRequest("No default model is configured; pass `model`.", code="model_required", param="model")
        return _served(endpoint)
    endpoint = model_endpoint_list(kind=ModelEndpoint.Kind.CHAT).filter(name=model).first()
    if endpoint is not None:
        return _served(endpoint)
    for source in model_sources():
        if (served := source.resolve(user=user, model=model)) is not None:
            return served
    raise NotFound(
        f"The model {model!r} does not exist or you do not have access to it.", code="model_not_found", param="model"
    )
