"""Reads: rerank models by name, and the ``rerank`` option of plugin search and plugin chat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.chat.models import ModelEndpoint
from apps.chat.selectors import model_endpoint_list
from apps.core.errors import ApiError, NotFoundError

# First-stage candidates a reranker scores in plugin search: by default max(4 × top_k, 20), at most this many.
MAX_RERANK_CANDIDATES = 100
MIN_RERANK_CANDIDATES = 20
RERANK_OPTION_KEYS = frozenset({"model", "top_n"})


@dataclass(frozen=True)
class RerankOption:
    """A resolved ``rerank`` option: the model, and how many first-stage candidates it scores (None: default)."""

    endpoint: ModelEndpoint
    top_n: int | None = None

    def candidates(self, *, top_k: int) -> int:
        wanted = self.top_n if self.top_n is not None else max(4 * top_k, MIN_RERANK_CANDIDATES)
        return max(top_k, min(wanted, MAX_RERANK_CANDIDATES))


def rerank_model_get(*, model: Any, param: str = "model") -> ModelEndpoint:
    """The enabled rerank model called ``model`` (the default one when None). Unknown: 404 ``model_not_found``;
    another kind of model (chat, embedding): 400 ``not_a_rerank_model``."""
    endpoints = model_endpoint_list(kind=ModelEndpoint.Kind.RERANK)
    if model is None:
        endpoint = endpoints.filter(is_default=True).first()
        if endpoint is None:
            raise ApiError("No default rerank model is configured; pass `model`.", code="model_required",
                           param=param)
        return endpoint
    if not isinstance(model, str) or not model.strip():
        raise ApiError(f"{param} must name a rerank model.", param=param)
    endpoint = endpoints.filter(name=model).first()
    if endpoint is not None:
        return endpoint
    other = model_endpoint_list().filter(name=model).first()
    if other is not None:
        raise ApiError(f"{model!r} is a {other.kind} model, not a rerank model.", code="not_a_rerank_model",
                       param=param)
    raise NotFoundError(f"The rerank model {model!r} does not exist.", code="model_not_found", param=param)


def top_n_param(*, value: Any, param: str, maximum: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (maximum and value > maximum):
        bound = f" to {maximum}" if maximum else " or more"
        raise ApiError(f"{param} must be an integer from 1{bound}.", param=param)
    return value


def rerank_option_parse(*, value: Any, param: str = "rerank") -> RerankOption | None:
    """``rerank`` as given: a rerank model's name, ``{"model": name, "top_n"?: int}``, or null/false (none)."""
    if value is None or value is False:
        return None
    if isinstance(value, str):
        return RerankOption(endpoint=rerank_model_get(model=value, param=param))
    if not isinstance(value, dict):
        raise ApiError(f'{param} must be a rerank model\'s name or {{"model": name, "top_n": int}}.', param=param)
    if unknown := sorted(set(value) - RERANK_OPTION_KEYS):
        raise ApiError(f"{param} takes only model and top_n, not {', '.join(unknown)}.", param=f"{param}.{unknown[0]}")
    if value.get("model") is None:
        raise ApiError(f"{param}.model is required.", param=f"{param}.model")
    top_n = top_n_param(value=value.get("top_n"), param=f"{param}.top_n", maximum=MAX_RERANK_CANDIDATES)
    return RerankOption(endpoint=rerank_model_get(model=value["model"], param=f"{param}.model"), top_n=top_n)
