"""Reranking with a registered rerank model: a local CrossEncoder (in this process or on a ``serve`` worker, which
keeps it loaded) or an upstream ``/rerank`` server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from django.conf import settings

from apps.chat.models import ModelEndpoint
from apps.chat.runtime_errors import to_domain_error
from apps.chat.selectors import resolve_model_path
from apps.core.dispatch import serve_call
from apps.rerank.selectors import rerank_model_get
from apps.rerank.tasks import rerank_task
from workers.errors import DomainError
from workers.retrieval.rerank import RerankApi, RerankScores, UpstreamReranker
from workers.runtime.errors import RuntimeErrorBase


@dataclass(frozen=True)
class Reranked:
    model: str
    ranking: list[tuple[int, float]]  # (index into the documents, score), best first
    tokens: int


def rerank_scores(*, endpoint: ModelEndpoint, query: str, passages: Sequence[str]) -> RerankScores:
    """One score per passage, in order. Upstream failures are 502 ``upstream_error`` / 504 ``upstream_timeout``;
    a local model that cannot load is 503 ``model_unavailable``."""
    if not passages:
        return RerankScores(scores=[], tokens=0)
    if endpoint.backend == ModelEndpoint.Backend.OPENAI_UPSTREAM:
        reranker = UpstreamReranker(
            base_url=endpoint.base_url,
            api=cast(RerankApi, endpoint.rerank_api),  # a choice of the model field
            model=endpoint.upstream_model or endpoint.name,
            api_key=endpoint.upstream_api_key,
            timeout_s=settings.RERANK_TIMEOUT_S,
        )
        try:
            return reranker.score(query=query, passages=passages)
        except RuntimeErrorBase as exc:
            raise to_domain_error(exc) from exc
    model_dir = resolve_model_path(endpoint.path)
    output = serve_call(rerank_task, model_dir, query, list(passages))
    if "error" in output:
        raise DomainError.from_dict(output["error"])
    return RerankScores(scores=output["scores"], tokens=output["tokens"])


def rerank_create(*, model: str | None, query: str, documents: Sequence[str], top_n: int | None = None) -> Reranked:
    """The documents' indexes and scores, best first (ties keep the given order), the best ``top_n`` of them."""
    endpoint = rerank_model_get(model=model)
    scored = rerank_scores(endpoint=endpoint, query=query, passages=documents)
    ranking = sorted(enumerate(scored.scores), key=lambda pair: -pair[1])
    return Reranked(model=endpoint.name, ranking=ranking[:top_n] if top_n else ranking, tokens=scored.tokens)
