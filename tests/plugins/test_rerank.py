"""The rerank stage of plugin search and plugin chat, with a tiny CrossEncoder built by the test session."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.chat.models import ModelEndpoint
from apps.core.dispatch import wait_for_embedded_tasks
from apps.plugins.models import Plugin
from tests.rerank.conftest import cross_encoder_scores, reranker_endpoint, tiny_reranker  # noqa: F401

BASE = "/v1/plugin/custom/plugins"
QUERY = "fix a flat bike tire"
# Every document shares a word with the query, so the first stage (BM25) ranks all six.
CORPUS = [
    {"id": "inventory", "title": "Inventory", "text": "Inventory list: bike, tire, lamp, chair, table, rug."},
    {"id": "repair", "title": "Workshop", "text": "Repairing a punctured bike wheel: patch the inner tube."},
    {"id": "bread", "title": "Baking", "text": "Bike to the bakery, knead the dough and bake the bread."},
    {"id": "cats", "title": "Cats", "text": "The cat sits on the mat next to a flat bike tire."},
    {"id": "tigers", "title": "Tigers", "text": "Tigers are the largest cats; none can fix a bike."},
    {"id": "garden", "title": "Garden", "text": "Garden tools, a pump and a bike in the shed."},
]
BM25 = {"tfidf_weight": 1.0, "embedding_weight": 0}
pytestmark = pytest.mark.usefixtures("reranker_endpoint")  # the tiny CrossEncoder as rerank model "tiny-reranker"


@pytest.fixture
def plugin_id(transactional_db, tenant, plugin_indexes) -> str:
    plugin_id = tenant.client.post(BASE, {"name": "Shed"}, format="json").json()["plugin_id"]
    upload = SimpleUploadedFile("corpus.jsonl", "\n".join(json.dumps(r) for r in CORPUS).encode())
    assert tenant.client.post(f"{BASE}/{plugin_id}/files", {"file": [upload]}, format="multipart").status_code == 202
    wait_for_embedded_tasks()
    return plugin_id


def _search(tenant, **body):
    return tenant.client.post("/v1/plugin/search", body, format="json")


def _expected(cross_encoder_scores, query: str = QUERY) -> list[tuple[str, float]]:  # noqa: F811
    texts = {record["id"]: record["text"] for record in CORPUS}
    scores = dict(zip(texts, cross_encoder_scores(query, list(texts.values())), strict=True))
    return sorted(scores.items(), key=lambda item: -item[1])


def test_a_reranker_changes_the_order_as_it_scores(tenant, plugin_id, cross_encoder_scores):  # noqa: F811
    expected = _expected(cross_encoder_scores)
    assert len({round(score, 4) for _, score in expected}) == len(expected)  # no near-ties to decide by rounding
    first_stage = _search(tenant, plugin=plugin_id, query=QUERY, top_k=6, **BM25).json()["data"]
    assert len(first_stage) == 6

    reranked = _search(tenant, plugin=plugin_id, query=QUERY, top_k=6, rerank="tiny-reranker", **BM25).json()["data"]
    assert [h["doc_id"] for h in reranked] == [doc for doc, _ in expected]
    assert [h["doc_id"] for h in reranked] != [h["doc_id"] for h in first_stage]
    for hit, (_, score) in zip(reranked, expected, strict=True):
        assert hit["score"] == pytest.approx(score, abs=1e-5) and hit["scores"]["rerank"] == hit["score"]
        assert set(hit["scores"]) == {"sparse", "dense", "rerank"}
    fused = {h["doc_id"]: h["score"] for h in first_stage}
    assert all(h["scores"]["sparse"] == pytest.approx(fused[h["doc_id"]], abs=1e-5) for h in reranked)

    # top_k 2 still reranks the whole pool (max(4 × 2, 20) candidates): the best two by rerank score.
    best_two = _search(
        tenant, plugin=plugin_id, query=QUERY, top_k=2, rerank={"model": "tiny-reranker"}, **BM25
    ).json()["data"]
    assert [h["doc_id"] for h in best_two] == [doc for doc, _ in expected[:2]]
    # top_n: only the first stage's best 2 are reranked.
    pool = _search(
        tenant, plugin=plugin_id, query=QUERY, top_k=2, rerank={"model": "tiny-reranker", "top_n": 2}, **BM25
    ).json()["data"]
    assert {h["doc_id"] for h in pool} == {h["doc_id"] for h in first_stage[:2]}
    assert pool[0]["score"] >= pool[1]["score"]


def test_score_threshold_applies_to_the_rerank_score(tenant, plugin_id, cross_encoder_scores):  # noqa: F811
    expected = _expected(cross_encoder_scores)
    threshold = (expected[2][1] + expected[3][1]) / 2
    hits = _search(
        tenant, plugin=plugin_id, query=QUERY, top_k=6, rerank="tiny-reranker", score_threshold=threshold, **BM25
    ).json()["data"]
    assert [h["doc_id"] for h in hits] == [doc for doc, _ in expected[:3]]
    assert all(h["score"] >= threshold for h in hits)
    # Without reranking the same threshold applies to the fused score, which keeps another set.
    fused = _search(tenant, plugin=plugin_id, query=QUERY, top_k=6, score_threshold=threshold, **BM25).json()["data"]
    assert [h["doc_id"] for h in fused] != [h["doc_id"] for h in hits]


def test_the_plugin_default_and_turning_it_off(tenant, plugin_id, cross_encoder_scores):  # noqa: F811
    plugin = Plugin.objects.get(pk=plugin_id)
    plugin.params = {**plugin.params, "rerank": {"model": "tiny-reranker", "top_n": 10}}
    plugin.save(update_fields=["params"])
    expected = [doc for doc, _ in _expected(cross_encoder_scores)]
    by_default = _search(tenant, plugin=plugin_id, query=QUERY, top_k=6, **BM25).json()["data"]
    assert [h["doc_id"] for h in by_default] == expected and "rerank" in by_default[0]["scores"]
    off = _search(tenant, plugin=plugin_id, query=QUERY, top_k=6, rerank=False, **BM25).json()["data"]
    assert [h["doc_id"] for h in off] != expected and "rerank" not in off[0]["scores"]


def test_plugin_chat_reranks_its_passages(tenant, plugin_id, chatty_endpoint, cross_encoder_scores):  # noqa: F811
    body = {
        "plugin": plugin_id,
        "query": QUERY,
        "search_result_num": 3,
        "show_search_result": True,
        "score_ratio": {"tfidf": 1.0, "vector": 0.0},
        "temperature": 0,
        "rerank": "tiny-reranker",
    }
    response = tenant.client.post("/v1/plugin/chat", body, format="json")
    assert response.status_code == 200, response.content
    expected = _expected(cross_encoder_scores, query=QUERY)
    assert [h["doc_id"] for h in response.json()["search_result"]] == [doc for doc, _ in expected[:3]]

    bad = tenant.client.post("/v1/plugin/chat", {**body, "rerank": "nope", "stream": True}, format="json")
    assert bad.status_code == 404 and bad.json()["error"]["param"] == "rerank"  # checked before the stream starts


@pytest.mark.parametrize(
    ("rerank", "status", "code", "param"),
    [
        ("nope", 404, "model_not_found", "rerank"),
        ({"model": "nope"}, 404, "model_not_found", "rerank.model"),
        ("chatty-chat", 400, "not_a_rerank_model", "rerank"),
        ({"model": "tiny-reranker", "top_n": 0}, 400, "invalid_request", "rerank.top_n"),
        ({"model": "tiny-reranker", "top_n": 101}, 400, "invalid_request", "rerank.top_n"),
        ({"model": "tiny-reranker", "top_n": "many"}, 400, "invalid_request", "rerank.top_n"),
        ({"model": "tiny-reranker", "top_k": 3}, 400, "invalid_request", "rerank.top_k"),
        ({"top_n": 3}, 400, "invalid_request", "rerank.model"),
        (7, 400, "invalid_request", "rerank"),
        (True, 400, "invalid_request", "rerank"),
    ],
)
def test_bad_rerank_options(tenant, rerank, status, code, param):
    ModelEndpoint.objects.create(name="chatty-chat", path="/nowhere")
    Plugin.objects.create(owner=None, builtin=True, slug="wiki", name="Wiki", kind="wiki")
    response = _search(tenant, plugin="wiki", query="x", rerank=rerank)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code and response.json()["error"]["param"] == param


def test_another_users_plugin_is_404(other_tenant, plugin_id):
    response = _search(other_tenant, plugin=plugin_id, query=QUERY, rerank="tiny-reranker")
    assert response.status_code == 404 and response.json()["error"]["code"] == "plugin_not_found"


def test_an_upstream_reranker(live_server, tenant, plugin_id, cross_encoder_scores):  # noqa: F811
    # This platform's own /v1/rerank as the upstream (the Jina/Cohere/vLLM request shape).
    ModelEndpoint.objects.create(
        name="reranker-up",
        kind="rerank",
        backend="openai-upstream",
        base_url=f"{live_server.url}/v1",
        upstream_api_key=tenant.key,
        upstream_model="tiny-reranker",
    )
    hits = _search(tenant, plugin=plugin_id, query=QUERY, top_k=6, rerank="reranker-up", **BM25).json()["data"]
    assert [h["doc_id"] for h in hits] == [doc for doc, _ in _expected(cross_encoder_scores)]
