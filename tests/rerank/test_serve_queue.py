"""A local reranker on the Celery `serve` queue: a real worker and Redis."""

from __future__ import annotations

import pytest

from apps.chat.models import ModelEndpoint
from tests.conftest import requires_redis

pytestmark = [pytest.mark.redis, requires_redis]

QUERY = "which animal is the biggest cat"
TEXTS = ["The cat sits on the mat.", "Tigers are the largest cats.", "Bake the bread."]


def test_rerank_on_a_serve_worker(celery_worker, tenant, tiny_reranker, cross_encoder_scores, tmp_path):
    ModelEndpoint.objects.create(name="tiny-reranker", kind="rerank", path=str(tiny_reranker))
    ModelEndpoint.objects.create(name="gone-reranker", kind="rerank", path=str(tmp_path / "gone"))
    body = tenant.client.post(
        "/v1/rerank", {"model": "tiny-reranker", "query": QUERY, "documents": TEXTS}, format="json"
    ).json()
    scores = cross_encoder_scores(QUERY, TEXTS)
    assert [r["index"] for r in body["results"]] == sorted(range(3), key=lambda i: -scores[i])
    assert body["usage"]["prompt_tokens"] > 0
    gone = tenant.client.post(
        "/v1/rerank", {"model": "gone-reranker", "query": QUERY, "documents": TEXTS}, format="json"
    )
    assert gone.status_code == 503 and gone.json()["error"]["code"] == "model_unavailable"  # came back as JSON
