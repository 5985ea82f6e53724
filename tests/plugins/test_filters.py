"""Metadata filters and score thresholds in plugin search, and Dify's External Knowledge API over a plugin."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.dispatch import wait_for_embedded_tasks
from workers.retrieval.documents import Document as IndexDocument
from workers.retrieval.index import HybridIndex
from workers.retrieval.profiles import get_profile

BASE = "/v1/plugin/custom/plugins"
DIFY = "/v1/dify/retrieval"
CORPUS = [
    {
        "id": f"bike-{n}",
        "title": f"Bicycle note {n}",
        "text": f"Bicycle maintenance note {n}: pump the tire, oil the chain and check the bicycle brakes.",
        "meta": meta,
    }
    for n, meta in enumerate(
        [
            {"year": 2019, "lang": "en", "tag": "repair"},
            {"year": 2020, "lang": "en", "tag": "repair", "reviewed": True},
            {"year": 2021, "lang": "de", "tag": "touring"},
            {"year": 2022, "lang": "en", "tag": "touring", "date": "2022-05-01"},
            {"year": 2023, "lang": "fr", "tag": "repair", "date": "2023-01-15"},
            {"year": 2024, "lang": "en", "tag": "", "date": "2024-07-30"},
            {"lang": "en", "tag": None},
            {},
        ]
    )
] + [{"id": "baking", "title": "Baking", "text": "Knead the dough and bake the bread.", "meta": {"year": 2020}}]


@pytest.fixture
def plugin_id(transactional_db, tenant, plugin_indexes) -> str:
    plugin_id = tenant.client.post(BASE, {"name": "Bikes"}, format="json").json()["plugin_id"]
    upload = SimpleUploadedFile("corpus.jsonl", "\n".join(json.dumps(r) for r in CORPUS).encode())
    assert tenant.client.post(f"{BASE}/{plugin_id}/files", {"file": [upload]}, format="multipart").status_code == 202
    wait_for_embedded_tasks()
    return plugin_id


def _ids(tenant, plugin_id: str, top_k: int = 9, **body) -> list[str]:
    response = tenant.client.post(
        "/v1/plugin/search", {"plugin": plugin_id, "query": "bicycle tire chain", "top_k": top_k, **body}, format="json"
    )
    assert response.status_code == 200, response.content
    return [hit["doc_id"] for hit in response.json()["data"]]


def test_index_search_restricted_to_allowed_documents(tmp_path, hash_embedder):
    index = HybridIndex(directory=tmp_path / "i", profile=get_profile(kind="generic"), embedder=hash_embedder)
    index.add_documents(
        documents=[IndexDocument(id=f"d{n}", title=f"Doc {n}", text=f"apple pear {n} " * (n + 1)) for n in range(30)]
    )
    allowed = {"d3", "d7", "d11", "d20", "missing"}
    for weights in ({}, {"embedding_weight": 0}, {"tfidf_weight": 0}):
        hits = index.search(query="apple pear", top_k=3, allowed_ids=allowed, **weights)
        assert len(hits) == 3 and {h.doc_id for h in hits} <= allowed
        assert hits[0].score == pytest.approx(max(h.score for h in hits))
    assert index.search(query="apple", top_k=3, allowed_ids=set()) == []
    assert len(index.search(query="apple", top_k=50, allowed_ids=allowed)) == 4


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"key": "lang", "op": "eq", "value": "en"}, {"bike-0", "bike-1", "bike-3", "bike-5", "bike-6"}),
        ({"key": "lang", "op": "ne", "value": "en"}, {"bike-2", "bike-4", "bike-7", "baking"}),
        ({"key": "lang", "op": "in", "value": ["de", "fr"]}, {"bike-2", "bike-4"}),
        ({"key": "lang", "op": "nin", "value": ["en", "de"]}, {"bike-4", "bike-7", "baking"}),
        ({"key": "year", "op": "gte", "value": 2021}, {"bike-2", "bike-3", "bike-4", "bike-5"}),
        (
            {"and": [{"key": "year", "op": "gt", "value": 2019}, {"key": "year", "op": "lt", "value": 2022}]},
            {"bike-1", "bike-2", "baking"},
        ),
        ({"key": "date", "op": "lte", "value": "2023-01-15"}, {"bike-3", "bike-4"}),
        ({"key": "reviewed", "op": "exists"}, {"bike-1"}),
        ({"key": "year", "op": "exists", "value": False}, {"bike-6", "bike-7"}),
        ({"key": "reviewed", "op": "eq", "value": True}, {"bike-1"}),
        ({"key": "tag", "op": "eq", "value": None}, {"bike-6"}),
        (
            {
                "or": [
                    {"key": "tag", "op": "eq", "value": "touring"},
                    {"and": [{"key": "lang", "op": "eq", "value": "fr"}, {"key": "year", "op": "lte", "value": 2023}]},
                ]
            },
            {"bike-2", "bike-3", "bike-4"},
        ),
    ],
)
def test_filters_select_exactly_the_matching_documents(tenant, plugin_id, filters, expected):
    assert set(_ids(tenant, plugin_id, filters=filters)) == expected


def test_filter_keeps_top_k_full_and_results_carry_meta(tenant, plugin_id):
    unfiltered = _ids(tenant, plugin_id, top_k=3)
    # Exclude what ranks first without the filter: the next best allowed documents still fill top_k.
    metas = {r["id"]: r["meta"] for r in CORPUS}
    excluded = [{"key": "year", "op": "ne", "value": metas[doc]["year"]} for doc in unfiltered if "year" in metas[doc]]
    excluded += [{"key": "year", "op": "exists"}] if any("year" not in metas[doc] for doc in unfiltered) else []
    filtered = _ids(tenant, plugin_id, top_k=3, filters={"and": excluded})
    assert len(filtered) == 3 and not set(filtered) & set(unfiltered)
    data = tenant.client.post(
        "/v1/plugin/search", {"plugin": plugin_id, "query": "bicycle", "top_k": 9}, format="json"
    ).json()["data"]
    metas = {hit["doc_id"]: hit["meta"] for hit in data}
    assert metas["bike-3"] == {"year": 2022, "lang": "en", "tag": "touring", "date": "2022-05-01"}
    assert metas["bike-7"] == {}


def test_score_threshold_drops_low_scores(tenant, plugin_id):
    data = tenant.client.post(
        "/v1/plugin/search", {"plugin": plugin_id, "query": "bread dough", "top_k": 9}, format="json"
    ).json()["data"]
    scores = [hit["score"] for hit in data]
    cut = (scores[0] + scores[-1]) / 2
    kept = tenant.client.post(
        "/v1/plugin/search",
        {"plugin": plugin_id, "query": "bread dough", "top_k": 9, "score_threshold": cut},
        format="json",
    ).json()["data"]
    assert kept and [h["score"] for h in kept] == [s for s in scores if s >= cut] and len(kept) < len(data)
    assert _ids(tenant, plugin_id, score_threshold=1e9) == []


@pytest.mark.parametrize(
    "filters",
    [
        {"key": "year", "op": "like", "value": 1},
        {"key": "year", "op": "in", "value": 2020},
        {"key": "year", "op": "in", "value": []},
        {"key": "year", "op": "gt", "value": [1]},
        {"key": "year", "op": "gt", "value": True},
        {"key": "year", "op": "exists", "value": "yes"},
        {"key": "", "op": "eq", "value": 1},
        {"key": "year", "op": "eq"},
        {"key": "year", "op": "eq", "value": {"a": 1}},
        {"and": []},
        {"and": [{"key": "a", "op": "eq", "value": 1}], "or": []},
        "year=2020",
        [{"key": "year", "op": "eq", "value": 2020}],
        {"and": [{"and": [{"and": [{"and": [{"and": [{"key": "a", "op": "eq", "value": 1}]}]}]}]}]},
        {"or": [{"key": f"k{n}", "op": "eq", "value": n} for n in range(51)]},
    ],
)
def test_bad_filters_are_400_naming_filters(tenant, filters):
    from apps.plugins.models import Plugin

    Plugin.objects.create(owner=None, builtin=True, slug="wiki", name="Wiki", kind="wiki")
    response = tenant.client.post(
        "/v1/plugin/search", {"plugin": "wiki", "query": "x", "filters": filters}, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == "filters"


def test_bad_score_threshold_and_chat_filters_are_400(tenant, chatty_endpoint):
    from apps.plugins.models import Plugin

    Plugin.objects.create(owner=None, builtin=True, slug="wiki", name="Wiki", kind="wiki")
    response = tenant.client.post(
        "/v1/plugin/search", {"plugin": "wiki", "query": "x", "score_threshold": -1}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "score_threshold"
    chat = tenant.client.post(
        "/v1/plugin/chat",
        {"plugin": "wiki", "query": "x", "stream": True, "filters": {"key": "a", "op": "near", "value": 1}},
        format="json",
    )
    assert chat.status_code == 400 and chat.json()["error"]["param"] == "filters"


def test_chat_search_step_honours_filters(tenant, plugin_id, chatty_endpoint):
    body = tenant.client.post(
        "/v1/plugin/chat",
        {
            "plugin": plugin_id,
            "query": "bicycle tire",
            "search_result_num": 5,
            "show_search_result": True,
            "temperature": 0,
            "filters": {"key": "lang", "op": "in", "value": ["de", "fr"]},
        },
        format="json",
    ).json()
    assert {hit["doc_id"] for hit in body["search_result"]} == {"bike-2", "bike-4"}


def test_other_tenants_plugin_is_404(tenant, other_tenant, plugin_id):
    search = other_tenant.client.post(
        "/v1/plugin/search",
        {"plugin": plugin_id, "query": "bicycle", "filters": {"key": "year", "op": "exists"}},
        format="json",
    )
    assert search.status_code == 404
    dify = other_tenant.client.post(
        DIFY,
        {"knowledge_id": plugin_id, "query": "bicycle", "retrieval_setting": {"top_k": 2, "score_threshold": 0}},
        format="json",
    )
    assert dify.status_code == 404 and dify.json() == {"error_code": 2001, "error_msg": "The knowledge does not exist."}


# --- Dify External Knowledge API ---------------------------------------------------------------------------


def _dify(client, plugin_id: str, **extra):
    body = {
        "knowledge_id": plugin_id,
        "query": "bicycle tire chain",
        "retrieval_setting": {"top_k": 3, "score_threshold": 0.0},
        **extra,
    }
    return client.post(DIFY, body, format="json")


def test_dify_retrieval_contract(tenant, plugin_id):
    response = _dify(tenant.client, plugin_id)
    assert response.status_code == 200, response.content
    records = response.json()["records"]
    assert len(records) == 3
    for record in records:
        assert set(record) == {"content", "score", "title", "metadata"}
        assert isinstance(record["content"], str) and record["content"]
        assert isinstance(record["score"], float) and record["title"].startswith("Bicycle note")
        assert isinstance(record["metadata"], dict) and record["metadata"]["doc_id"].startswith("bike-")
    by_slug = _dify(tenant.client, "bikes").json()["records"]
    assert [r["title"] for r in by_slug] == [r["title"] for r in records]
    empty = _dify(tenant.client, plugin_id, retrieval_setting={"top_k": 3, "score_threshold": 1e9})
    assert empty.status_code == 200 and empty.json() == {"records": []}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            {
                "logical_operator": "and",
                "conditions": [
                    {"name": ["lang"], "comparison_operator": "is", "value": "en"},
                    {"name": ["year"], "comparison_operator": "≥", "value": "2020"},
                ],
            },
            {"bike-1", "bike-3", "bike-5"},
        ),
        (
            {
                "logical_operator": "or",
                "conditions": [
                    {"name": "lang", "comparison_operator": "is", "value": "fr"},
                    {"name": "year", "comparison_operator": "=", "value": "2019"},
                ],
            },
            {"bike-0", "bike-4"},
        ),
        (
            {"conditions": [{"name": "lang", "comparison_operator": "is not", "value": "en"}]},
            {"bike-2", "bike-4", "bike-7", "baking"},
        ),
        (
            {
                "conditions": [
                    {"name": "year", "comparison_operator": "<", "value": 2021},
                    {"name": "year", "comparison_operator": "≠", "value": "2019"},
                ]
            },
            {"bike-1", "baking"},
        ),
        (
            {"conditions": [{"name": "date", "comparison_operator": "after", "value": "2023-01-01"}]},
            {"bike-4", "bike-5"},
        ),
        ({"conditions": [{"name": "date", "comparison_operator": "before", "value": "2023-01-01"}]}, {"bike-3"}),
        (
            {"conditions": [{"name": "tag", "comparison_operator": "empty", "value": None}]},
            {"bike-5", "bike-6", "bike-7", "baking"},
        ),
        (
            {"conditions": [{"name": "tag", "comparison_operator": "not empty"}]},
            {"bike-0", "bike-1", "bike-2", "bike-3", "bike-4"},
        ),
        ({"conditions": [{"name": "lang", "comparison_operator": "in", "value": ["de", "fr"]}]}, {"bike-2", "bike-4"}),
    ],
)
def test_dify_metadata_condition(tenant, plugin_id, condition, expected):
    response = _dify(
        tenant.client, plugin_id, retrieval_setting={"top_k": 9, "score_threshold": 0}, metadata_condition=condition
    )
    assert response.status_code == 200, response.content
    assert {r["metadata"]["doc_id"] for r in response.json()["records"]} == expected


def test_dify_errors(tenant, make_tenant, anon):
    assert anon.post(DIFY, {}, format="json").json()["error_code"] == 1001
    for header, code in (
        ("Token abc", 1001),
        ("Bearer", 1001),
        ("Bearer not-a-key", 1001),
        (f"Bearer {tenant.key[:-1]}{'B' if tenant.key.endswith('A') else 'A'}", 1002),
    ):
        anon.credentials(HTTP_AUTHORIZATION=header)
        response = anon.post(DIFY, {}, format="json")
        assert response.status_code == 403 and response.json()["error_code"] == code, (header, response.content)
        assert set(response.json()) == {"error_code", "error_msg"}
    assert _dify(tenant.client, "plg-nope").json() == {"error_code": 2001, "error_msg": "The knowledge does not exist."}
    from apps.plugins.models import Plugin

    Plugin.objects.create(owner=None, builtin=True, slug="wiki", name="Wiki", kind="wiki")
    for body in (
        {"knowledge_id": "wiki", "query": "x"},
        {"knowledge_id": "wiki", "query": "x", "retrieval_setting": {"top_k": 0}},
        {"knowledge_id": "wiki", "query": "x", "retrieval_setting": {"top_k": 2, "score_threshold": -1}},
    ):
        response = tenant.client.post(DIFY, body, format="json")
        assert response.status_code == 400 and response.json()["error_code"] == 400
        assert "retrieval_setting" in response.json()["error_msg"]
    for operator, value in (("contains", "a"), ("start with", "a"), ("≥", "soon"), ("in", "en"), ("near", 1)):
        response = _dify(
            tenant.client,
            "wiki",
            metadata_condition={"conditions": [{"name": "lang", "comparison_operator": operator, "value": value}]},
        )
        assert response.status_code == 400, (operator, response.content)
        assert response.json()["error_msg"].startswith("metadata_condition"), response.content


@pytest.mark.parametrize("hnsw", [False, True])
def test_dense_search_with_faiss_selector(monkeypatch, hnsw):
    import numpy as np

    from workers.retrieval import dense

    monkeypatch.setattr(dense, "_EXACT_ALLOWED_MAX", 0)  # large allowed sets go through FAISS's ID selector
    index = dense.DenseIndex(dimension=8, hnsw_threshold=10 if hnsw else 10_000)
    vectors = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index.add(ids=np.arange(200, dtype=np.int64), vectors=vectors)
    assert index.is_hnsw is hnsw
    allowed = np.arange(0, 200, 7, dtype=np.int64)
    ids, scores = index.search(vector=vectors[14], limit=5, allowed=allowed)
    assert len(ids) == 5 and set(ids.tolist()) <= set(allowed.tolist()) and ids[0] == 14
    exact = np.sort(vectors[allowed] @ vectors[14])[::-1][:5]
    assert np.allclose(scores, exact, atol=1e-5)
