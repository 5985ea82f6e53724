"""Search and rethink chat through the HTTP API, and the index's life cycle through the services."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F

from apps.core.dispatch import wait_for_embedded_tasks
from apps.plugins import indexes
from apps.plugins.models import Plugin
from apps.plugins.selectors import plugin_search
from apps.plugins.services import documents, ingestion
from workers.retrieval.documents import Document as IndexDocument

BASE = "/v1/plugin/custom/plugins"
MD = b"# Tide pools\n\nThe purple sea urchin grazes kelp along the rocky shore at low tide.\n"
CORPUS = [
    {
        "id": "inventory",
        "title": "Inventory",
        "text": "Inventory list: bicycle, tire, lamp, chair, table, rug.",
    },
    {
        "id": "repair",
        "title": "Workshop notes",
        "text": "Repairing a punctured bike wheel: remove the inner tube, patch the hole, then pump it up again.",
    },
    {
        "id": "baking",
        "title": "Baking",
        "text": "Knead the dough, let it rise for an hour and bake the bread.",
    },
]


def _plugin_with(tenant, *files: SimpleUploadedFile, name: str = "Notes") -> str:
    plugin_id = tenant.client.post(BASE, {"name": name}, format="json").json()["plugin_id"]
    response = tenant.client.post(f"{BASE}/{plugin_id}/files", {"file": list(files)}, format="multipart")
    assert response.status_code == 202, response.content
    wait_for_embedded_tasks()
    return plugin_id


def _corpus_file() -> SimpleUploadedFile:
    return SimpleUploadedFile("corpus.jsonl", "\n".join(json.dumps(r) for r in CORPUS).encode())


def _search(tenant, **body):
    return tenant.client.post("/v1/plugin/search", body, format="json")


def _sse(response) -> list:
    text = b"".join(response.streaming_content).decode()
    return [json.loads(line[len("data: ") :]) for line in text.split("\n\n") if line.startswith("data: ")]


def test_custom_plugin_end_to_end(
    transactional_db, tenant, other_tenant, chatty_endpoint, plugin_indexes, crazyones_pdf
):
    plugin_id = _plugin_with(
        tenant,
        SimpleUploadedFile("tide.md", MD),
        SimpleUploadedFile("crazyones.pdf", crazyones_pdf),
    )
    files = tenant.client.get(f"{BASE}/{plugin_id}/files").json()["data"]
    assert {f["status"] for f in files} == {"processed"}
    for query, expected in (("purple sea urchin", "tide.md"), ("the misfits, the rebels", "crazyones.pdf")):
        body = _search(tenant, plugin=plugin_id, query=query, top_k=2).json()
        assert body["object"] == "list" and body["data"][0]["doc_id"] == expected
        assert set(body["data"][0]) == {"doc_id", "title", "url", "text", "score", "scores", "meta"}
        assert set(body["data"][0]["scores"]) == {"sparse", "dense"}
    assert _search(other_tenant, plugin=plugin_id, query="urchin").status_code == 404

    chat = tenant.client.post(
        "/v1/plugin/chat",
        {
            "plugin": plugin_id,
            "query": "What do sea urchins eat?",
            "search_result_num": 2,
            "show_search_result": True,
            "score_ratio": {"tfidf": 1.0, "vector": 0.5},
            "temperature": 0,
            "session": [{"human": "hi", "assistant": "hello"}],
        },
        format="json",
    )
    assert chat.status_code == 200, chat.content
    body = chat.json()
    assert isinstance(body["result"], str) and isinstance(body["draft"], str)
    assert [s["action"] for s in body["steps"]] == ["rewrite query", "extract key terms", "search notes", "rethink"]
    assert body["steps"][0]["method"] == "fallback"  # the tiny test model cannot rewrite: follow-up + previous turn
    assert body["steps"][1]["observation"] == "sea, urchins, eat, hi"  # question words ("What do") dropped
    assert "[1] Tide pools" in body["steps"][2]["observation"]
    assert body["steps"][2]["query"] == "sea urchins eat hi"
    assert body["steps"][3]["observation"] == body["result"]
    assert body["search_result"][0]["doc_id"] == "tide.md"

    plain = tenant.client.post(
        "/v1/plugin/chat", {"plugin": "notes", "query": "urchin", "temperature": 0}, format="json"
    ).json()
    assert "search_result" not in plain and len(plain["steps"]) == 3

    stream = tenant.client.post(
        "/v1/plugin/chat",
        {
            "plugin": plugin_id,
            "query": "rebels",
            "stream": True,
            "show_search_result": True,
            "temperature": 0,
        },
        format="json",
    )
    events = _sse(stream)
    assert [e["step"]["action"] for e in events[:-1] if "step" in e] == ["extract key terms", "search notes", "rethink"]
    deltas = [e["delta"] for e in events[:-1] if "delta" in e]
    assert deltas and "".join(deltas) == events[-1]["result"]
    assert events[-1]["finished"] is True and events[-1]["search_result"][0]["doc_id"] == "crazyones.pdf"
    assert all(e["finished"] is False for e in events[:-1])

    legacy = tenant.client.post(
        "/bot-service/ai_service/rethink", {"text": "purple urchin", "pluginName": plugin_id}, format="json"
    ).json()
    assert legacy["code"] == 200 and isinstance(legacy["data"]["result"], list) and len(legacy["data"]["result"]) == 1
    assert legacy["data"]["search_result"][0]["doc_id"] == "tide.md"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": "  "}, "query"),
        ({"query": "x", "top_k": 0}, "top_k"),
        ({"query": "x", "top_k": 101}, "top_k"),
        ({"query": "x", "tfidf_weight": -1}, "tfidf_weight"),
        ({"query": "x", "embedding_weight": -0.5}, "embedding_weight"),
        ({"query": "x", "tfidf_weight": 0, "embedding_weight": 0}, "embedding_weight"),
        ({"query": "x", "top_k": "many"}, "top_k"),
        ({"plugin": "", "query": "x"}, "plugin"),
    ],
)
def test_search_validation(tenant, body, param):
    Plugin.objects.create(owner=None, builtin=True, slug="wiki", name="Wiki", kind="wiki")
    response = _search(tenant, **{"plugin": "wiki", **body})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param


def test_chat_validation(tenant, chatty_endpoint):
    Plugin.objects.create(owner=None, builtin=True, slug="wiki", name="Wiki", kind="wiki")
    for body, param in (
        ({"query": ""}, "query"),
        ({"query": "x", "search_result_num": 0}, "top_k"),
        ({"query": "x", "model": "nope"}, "model"),
        ({"plugin": "nope", "query": "x"}, "plugin"),
    ):
        response = tenant.client.post("/v1/plugin/chat", {"plugin": "wiki", **body, "stream": True}, format="json")
        assert response.status_code in (400, 404), response.content
        assert response.json()["error"]["param"] == param


def test_max_tokens_bounds_each_generation_of_the_chat(transactional_db, tenant, chatty_endpoint, plugin_indexes):
    plugin_id = _plugin_with(tenant, SimpleUploadedFile("tide.md", MD))
    question = {"plugin": plugin_id, "query": "What do sea urchins eat?", "temperature": 0}

    def completion_tokens(**body) -> int:
        """The completion tokens the chat was billed for (its draft and its revised answer)."""
        before = tenant.client.get("/v1/usage").json()["totals"]["completion_tokens"]
        response = tenant.client.post("/v1/plugin/chat", {**question, **body}, format="json")
        assert response.status_code == 200, response.content
        if body.get("stream"):
            assert _sse(response)[-1]["finished"] is True
        return tenant.client.get("/v1/usage").json()["totals"]["completion_tokens"] - before

    assert completion_tokens() > 2 * 2  # unbounded, the tiny model says more than the bound below allows
    assert 0 < completion_tokens(max_tokens=2) <= 2 * 2
    assert 0 < completion_tokens(max_tokens=2, stream=True) <= 2 * 2
    assert completion_tokens(max_tokens=16) == completion_tokens()  # the model's own maximum, the default

    for max_tokens in (0, 17, "many"):  # 17: more than the model's max_new_tokens
        response = tenant.client.post("/v1/plugin/chat", {**question, "max_tokens": max_tokens}, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["error"]["param"] == "max_tokens"


def test_weights_change_the_ranking(transactional_db, tenant, plugin_indexes):
    plugin_id = _plugin_with(tenant, _corpus_file())
    query = "fix a flat bicycle tire"
    sparse_only = plugin_search(user=tenant.user, plugin=plugin_id, query=query, top_k=3, embedding_weight=0)
    dense_only = plugin_search(user=tenant.user, plugin=plugin_id, query=query, top_k=3, tfidf_weight=0)
    # BM25 only matches the shared words; the embedding model understands that a bike wheel is a bicycle tire.
    assert [h["doc_id"] for h in sparse_only] == ["inventory"]
    assert sparse_only[0]["scores"]["dense"] == 0
    assert dense_only[0]["doc_id"] == "repair" and dense_only[0]["scores"]["sparse"] == 0
    hybrid = _search(tenant, plugin=plugin_id, query=query, top_k=3, tfidf_weight=1, embedding_weight=1).json()
    assert {h["doc_id"] for h in hybrid["data"][:2]} == {"inventory", "repair"}


def test_index_add_delete_persist_reload(transactional_db, tenant, plugin_indexes):
    plugin_id = _plugin_with(tenant, _corpus_file())
    plugin = Plugin.objects.get(pk=plugin_id)

    def ranking(query: str) -> list[tuple[str, float]]:
        return [
            (h["doc_id"], h["score"]) for h in plugin_search(user=tenant.user, plugin=plugin_id, query=query, top_k=3)
        ]

    before = ranking("bread dough")
    indexes.forget()  # a fresh process: the index comes back from disk
    assert ranking("bread dough") == before and before[0][0] == "baking"

    document = plugin.documents.get(external_id="baking")
    documents.document_delete(document=document)
    assert "baking" not in [doc for doc, _ in ranking("bread dough")]
    indexes.forget()
    assert "baking" not in [doc for doc, _ in ranking("bread dough")]

    # Another process saves a new version: the cached copy is replaced on the next search.
    other = indexes.open_index(plugin=plugin)
    other.add_documents(documents=[IndexDocument(id="kiln", title="Kiln", text="Firing clay pots in a kiln.")])
    other.save()
    Plugin.objects.filter(pk=plugin_id).update(index_version=F("index_version") + 1)
    assert ranking("clay kiln")[0][0] == "kiln"

    chunks = ingestion.plugin_reindex(plugin=Plugin.objects.get(pk=plugin_id))  # rebuilt from the Document rows
    assert chunks == 2
    assert "kiln" not in [doc for doc, _ in ranking("clay kiln")]
    assert ranking("bicycle")[0][0] == "inventory"
