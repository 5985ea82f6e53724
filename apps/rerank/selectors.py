"""Reads: rerank models by name, and the ``rerank`` option of plugin search and plugin chat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.chat.models import ModelEndpoint
from apps.chat.selectors import model_endpoint_of_kind_get
from workers.errors import InvalidRequest

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
    """The enabled rerank model called ``model`` (the default one when None); see ``model_endpoint_of_kind_get``."""
    return model_endpoint_of_kind_get(kind=ModelEndpoint.Kind.RERANK, model=model, param=param)


def top_n_param(*, value: Any, param: str, maximum: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (maximum and value > maximum):
        bound = f" to {maximum}" if maximum else " or more"
        raise InvalidRequest(f"{param} must be an integer from 1{bound}.", param=param)
    return value


def rerank_option_parse(*, value: Any, param: str = "rerank") -> RerankOption | None:
    """``rerank`` as given: a rerank model's name, ``{"model": name, "top_n"?: int}``, or null/false (none)."""
    if value is None or value is False:
        return None
    if isinstance(value, str):
        return RerankOption(endpoint=rerank_model_get(model=value, param=param))
    if not isinstance(value, dict):
        raise InvalidRequest(f'{param} must be a rerank model\'s name or {{"model": name, "top_n": int}}.', param=param)
    if unknown := sorted(set(value) - RERANK_OPTION_KEYS):
        raise InvalidRequest(
            f"{param} takes only model and top_n, not {', '.join(unknown)}.", param=f"{param}.{unknown[0]}"
        )
    if value.get("model") is None:
        raise InvalidRequest(f"{param}.model is required.", param=f"{param}.model")
    top_n = top_n_param(value=value.get("top_n"), param=f"{param}.top_n", maximum=MAX_RERANK_CANDIDATES)
    return RerankOption(endpoint=rerank_model_get(model=value["model"], param=f"{param}.model"), top_n=top_n)
