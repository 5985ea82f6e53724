"""Real embedding clients, unchanged, against a live server: LangChain's ``OpenAIEmbeddings`` and LlamaIndex's
``OpenAILikeEmbedding``. Every request body they send is recorded, to check what actually goes over the wire."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest
from langchain_openai import OpenAIEmbeddings
from llama_index.embeddings.openai_like import OpenAILikeEmbedding

from apps.embeddings.services import embedding_models_register_bundled

DOCUMENTS = ["The cat sits on the mat.", "Stock markets fell sharply today.", "Tigers are the largest cats."]
QUERY = "Which animal is the biggest cat?"


@pytest.fixture
def minilm(db):
    return embedding_models_register_bundled()["all-minilm-l6-v2"]


@pytest.fixture
def sent() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def http_client(sent: list[dict[str, Any]]) -> httpx.Client:
    def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/embeddings"):
            sent.append(json.loads(request.content))

    return httpx.Client(event_hooks={"request": [record]})


def plain(live_server, tenant, texts: list[str]) -> np.ndarray:
    """What a plain string request answers, for comparison."""
    response = httpx.post(
        f"{live_server.url}/v1/embeddings",
        headers={"Authorization": f"Bearer {tenant.key}"},
        json={"model": "all-minilm-l6-v2", "input": texts, "encoding_format": "float"},
    )
    return np.array([item["embedding"] for item in response.json()["data"]])


def cosines(a: Any, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.django_db(transaction=True)
def test_langchain_tokenizes_with_the_models_own_tokenizer(live_server, tenant, minilm, http_client, sent):
    # tiktoken's encodings are downloaded on first use (impossible offline) and are not this model's anyway:
    # tiktoken_enabled=False makes LangChain split long texts with the model's own tokenizer, from its directory.
    embeddings = OpenAIEmbeddings(
        model="all-minilm-l6-v2",
        base_url=f"{live_server.url}/v1",
        api_key=tenant.key,
        max_retries=0,
        tiktoken_enabled=False,
        tiktoken_model_name=minilm.path,
        embedding_ctx_length=254,
        http_client=http_client,
    )
    documents = embeddings.embed_documents(DOCUMENTS)
    query = embeddings.embed_query(QUERY)
    assert np.all(cosines(documents, plain(live_server, tenant, DOCUMENTS)) > 0.99)
    assert cosines([query], plain(live_server, tenant, [QUERY]))[0] > 0.99
    # What it sends: the chunks it cut with the tokenizer, decoded back to (lower-cased, uncased-BERT) text.
    assert [body["input"] for body in sent] == [[text.lower() for text in DOCUMENTS], [QUERY.lower()]]

    # A text longer than embedding_ctx_length is sent as several chunks whose vectors LangChain averages.
    long_text = " ".join(["tiger"] * 300 + ["market"] * 300)
    sent.clear()
    [vector] = embeddings.embed_documents([long_text])
    assert [len(body["input"]) for body in sent] == [3] and np.isclose(np.linalg.norm(vector), 1)


@pytest.mark.django_db(transaction=True)
def test_langchain_raw_text(live_server, tenant, minilm, http_client, sent):
    embeddings = OpenAIEmbeddings(
        model="all-minilm-l6-v2",
        base_url=f"{live_server.url}/v1",
        api_key=tenant.key,
        max_retries=0,
        check_embedding_ctx_length=False,
        http_client=http_client,
    )
    documents = embeddings.embed_documents(DOCUMENTS)
    assert np.all(cosines(documents, plain(live_server, tenant, DOCUMENTS)) > 0.999)
    assert sent[0]["input"] == DOCUMENTS


@pytest.mark.django_db(transaction=True)
def test_llamaindex_openai_like_embedding(live_server, tenant, minilm, http_client, sent):
    embed_model = OpenAILikeEmbedding(
        model_name="all-minilm-l6-v2",
        api_base=f"{live_server.url}/v1",
        api_key=tenant.key,
        max_retries=0,
        embed_batch_size=2,
        http_client=http_client,
    )
    text = embed_model.get_text_embedding(DOCUMENTS[0])
    query = embed_model.get_query_embedding(QUERY)
    batch = embed_model.get_text_embedding_batch(DOCUMENTS)
    expected = plain(live_server, tenant, DOCUMENTS)
    assert len(text) == 384 and cosines([text], expected[:1])[0] > 0.999
    assert cosines([query], plain(live_server, tenant, [QUERY]))[0] > 0.999
    assert len(batch) == 3 and np.all(cosines(batch, expected) > 0.999)
    assert [body["input"] for body in sent[2:]] == [DOCUMENTS[:2], DOCUMENTS[2:]]  # embed_batch_size=2
    assert np.dot(query, batch[2]) > np.dot(query, batch[1])
