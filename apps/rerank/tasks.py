from __future__ import annotations

from typing import Any

from celery import shared_task

from apps.chat.runtime_errors import error_to_dict
from workers.retrieval.rerank import CrossEncoderReranker
from workers.runtime.errors import RuntimeErrorBase


def rerank_local(*, model_dir: str, query: str, passages: list[str]) -> dict[str, Any]:
    """``{"scores", "tokens"}`` from the CrossEncoder at ``model_dir`` (loaded once per process), or
    ``{"error": …}`` for the trip back from a worker."""
    try:
        result = CrossEncoderReranker(model_dir=model_dir).score(query=query, passages=passages)
    except RuntimeErrorBase as exc:
        return {"error": error_to_dict(exc)}
    return {"scores": result.scores, "tokens": result.tokens}


@shared_task(name="rerank.score")
def rerank_task(model_dir: str, query: str, passages: list[str]) -> dict[str, Any]:
    return rerank_local(model_dir=model_dir, query=query, passages=passages)
