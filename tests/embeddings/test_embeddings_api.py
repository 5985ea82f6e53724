from __future__ import annotations

import base64

import numpy as np
import openai
import pytest

from apps.embeddings.services import embedding_model_register_default


@pytest.fixture
def minilm(db):
    return embedding_model_register_default()


@pytest.mark.django_db
def test_openai_shape_and_similarity(tenant, minilm):
    body = tenant.client.post("/v1/embeddings", {"input": ["the cat sits", "a cat is sitting", "stock markets fell"],
                                                 "model": "all-minilm-l6-v2"}, format="json").json()
    assert body["object"] == "list" and body["model"] == "all-minilm-l6-v2"
    vectors = np.array([item["embedding"] for item in body["data"]])
    assert vectors.shape == (3, 384) and [item["index"] for item in body["data"]] == [0, 1, 2]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    assert "all-minilm-l6-v2" in {m["id"] for m in tenant.client.get("/v1/models").json()["data"]}


@pytest.mark.django_db
def test_tigerbot_shape_defaults_the_model_and_base64_decodes(tenant, minilm):
    plain = tenant.client.post("/v1/embeddings", {"input": "你好"}, format="json").json()["data"][0]["embedding"]
    encoded = tenant.client.post("/v1/embeddings", {"input": "你好", "encoding_format": "base64"},
                                 format="json").json()["data"][0]["embedding"]
    assert np.allclose(np.frombuffer(base64.b64decode(encoded), dtype="<f4"), plain, atol=1e-6)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "param"),
    [({"input": ""}, 400, "input"), ({"input": []}, 400, "input"), ({"input": [[]]}, 400, "input"),
     ({"input": "x", "dimensions": 128}, 400, "dimensions"), ({"input": "x", "model": "nope"}, 404, "model"),
     ({"input": "x", "encoding_format": "int8"}, 400, "encoding_format")],
)
def test_bad_embedding_requests(tenant, minilm, body, status, param):
    response = tenant.client.post("/v1/embeddings", body, format="json")
    assert response.status_code == status and response.json()["error"]["param"] == param


@pytest.mark.django_db(transaction=True)
def test_the_openai_sdk(live_server, tenant, minilm):
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0)
    response = client.embeddings.create(model="all-minilm-l6-v2", input=["hello", "world"])
    assert len(response.data) == 2 and len(response.data[0].embedding) == 384
