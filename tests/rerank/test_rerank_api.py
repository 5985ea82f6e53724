"""``POST /v1/rerank`` (Jina/Cohere shape) with the tiny CrossEncoder, and registering rerank models."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apps.chat.models import ModelEndpoint
from apps.usage.models import UsageRecord
from tests.rerank.conftest import make_tiny_cross_encoder
from workers.retrieval.rerank import CrossEncoderReranker

QUERY = "which animal is the biggest cat"
DOCUMENTS = [
    "The cat sits on the mat.",
    {"text": "Tigers are the largest cats."},
    "Bake the bread.",
    {"text": "Garden tools in the shed.", "id": "ignored"},
]
TEXTS = [d if isinstance(d, str) else d["text"] for d in DOCUMENTS]


def _rerank(tenant, **body):
    return tenant.client.post("/v1/rerank", body, format="json")


def test_jina_cohere_shape(tenant, reranker_endpoint, cross_encoder_scores, django_capture_on_commit_callbacks):
    scores = cross_encoder_scores(QUERY, TEXTS)
    order = sorted(range(len(TEXTS)), key=lambda i: -scores[i])
    with django_capture_on_commit_callbacks(execute=True):
        response = _rerank(tenant, model="tiny-reranker", query=QUERY, documents=DOCUMENTS, top_n=3)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"id", "model", "results", "usage"} and body["id"].startswith("rerank-")
    assert body["model"] == "tiny-reranker"
    assert [r["index"] for r in body["results"]] == order[:3]
    for result in body["results"]:
        assert set(result) == {"index", "relevance_score", "document"}
        assert result["relevance_score"] == pytest.approx(scores[result["index"]], abs=1e-6)
        assert result["document"] == {"text": TEXTS[result["index"]]}
    tokens = CrossEncoderReranker(model_dir=reranker_endpoint.path).score(query=QUERY, passages=TEXTS).tokens
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens} and tokens > 0
    record = UsageRecord.objects.get()
    assert (record.route, record.model, record.prompt_tokens) == ("/v1/rerank", "tiny-reranker", tokens)

    plain = _rerank(
        tenant, model="tiny-reranker", query=QUERY, documents=TEXTS, return_documents=False, top_n=50
    ).json()
    assert [r["index"] for r in plain["results"]] == order and all("document" not in r for r in plain["results"])


def test_the_default_rerank_model(tenant, reranker_endpoint):
    assert _rerank(tenant, query=QUERY, documents=TEXTS).json()["error"]["code"] == "model_required"
    ModelEndpoint.objects.filter(pk=reranker_endpoint.pk).update(is_default=True)
    assert _rerank(tenant, query=QUERY, documents=TEXTS).json()["model"] == "tiny-reranker"


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"top_n": 0}, 400, "min_value", "top_n"),
        ({"top_n": -2}, 400, "min_value", "top_n"),
        ({"top_n": "some"}, 400, "invalid_request", "top_n"),
        ({"top_n": 1.5}, 400, "invalid_request", "top_n"),
        ({"documents": []}, 400, "min_length", "documents"),
        ({"documents": "one"}, 400, "not_a_list", "documents"),
        ({"documents": ["ok", 3]}, 400, "invalid_request", "documents[1]"),
        ({"documents": [{"title": "no text"}]}, 400, "invalid_request", "documents[0]"),
        ({"query": "  "}, 400, "invalid_request", "query"),
        ({"model": "nope"}, 404, "model_not_found", "model"),
        ({"model": "chatty-chat"}, 400, "not_a_rerank_model", "model"),
        ({"model": "tiny-reranker", "return_documents": "perhaps"}, 400, "invalid_request", "return_documents"),
        ({"top_k": 2}, 400, "invalid_request", "top_k"),  # top_n misspelt: not all documents silently
    ],
)
def test_bad_requests(tenant, reranker_endpoint, body, status, code, param):
    ModelEndpoint.objects.create(name="chatty-chat", path="/nowhere")
    response = _rerank(tenant, **{"model": "tiny-reranker", "query": QUERY, "documents": TEXTS, **body})
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)


def test_unknown_and_unsupported_fields_are_refused_by_name(tenant, reranker_endpoint):
    body = {"model": "tiny-reranker", "query": QUERY, "documents": TEXTS}
    for extra, message in [
        ({"top_k": 2}, "top_k: top_k is not a known field."),
        ({"max_chunks_per_doc": 2}, "max_chunks_per_doc: max_chunks_per_doc is not supported."),
        ({"rank_fields": ["text"]}, "rank_fields: rank_fields is not supported."),
    ]:
        response = _rerank(tenant, **body, **extra)
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert (error["param"], error["code"], error["message"]) == (next(iter(extra)), "invalid_request", message)
    accepted = _rerank(tenant, **body, user="someone")
    assert accepted.status_code == 200, accepted.content


def test_auth_and_models_that_cannot_rerank(anon, tenant, reranker_endpoint, tmp_path):
    response = anon.post("/v1/rerank", {"model": "tiny-reranker", "query": QUERY, "documents": TEXTS}, format="json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"
    ModelEndpoint.objects.create(name="gone-reranker", kind="rerank", path=str(tmp_path / "gone"))
    ModelEndpoint.objects.create(
        name="two-labels", kind="rerank", path=str(make_tiny_cross_encoder(tmp_path / "two", num_labels=2))
    )
    for model in ("gone-reranker", "two-labels"):
        response = _rerank(tenant, model=model, query=QUERY, documents=TEXTS)
        assert response.status_code == 503 and response.json()["error"]["code"] == "model_unavailable"


def test_registering_rerank_models(db, tiny_reranker, tmp_path):
    models_json = tmp_path / "models.json"
    models_json.write_text(
        json.dumps(
            [
                {"name": "local-reranker", "kind": "rerank", "path": str(tiny_reranker)},
                {
                    "name": "tei-reranker",
                    "kind": "rerank",
                    "backend": "openai-upstream",
                    "base_url": "http://tei:8080",
                    "rerank_api": "tei",
                },
            ]
        )
    )
    call_command("load_models", str(models_json))  # no `family`: it means nothing to a reranker
    assert dict(ModelEndpoint.objects.filter(kind="rerank").values_list("name", "rerank_api")) == {
        "local-reranker": "jina",
        "tei-reranker": "tei",
    }
    with pytest.raises(ValidationError, match="serve_url"):
        ModelEndpoint(name="x", kind="rerank", path=str(tiny_reranker), serve_url="http://vllm:8000/v1").full_clean()
    with pytest.raises(ValidationError, match="base_url"):
        ModelEndpoint(name="y", kind="rerank", backend="openai-upstream").full_clean()
    with pytest.raises(ValidationError, match="rerank_api"):
        ModelEndpoint(name="z", kind="rerank", path=str(tiny_reranker), rerank_api="cohere-v9").full_clean()
