from __future__ import annotations

import pytest

from apps.chat.augment import keep_valid_markers, url_citations
from apps.chat.models import ModelEndpoint
from workers.runtime.specs import ChatMessage
from workers.runtime.tiny import make_tiny_model, overfit_tiny_model

from .conftest import RESULTS

pytestmark = pytest.mark.django_db


def test_search_with_the_web_provider(tenant, searxng):
    body = tenant.client.post("/v1/search", {"query": "capital of France", "top_k": 5}, format="json").json()
    assert body["total_size"] == 2 and body["providers"] == ["web"]
    assert body["results"][0] == {
        "title": RESULTS[0]["title"],
        "url": RESULTS[0]["url"],
        "snippet": RESULTS[0]["content"],
        "source": "wikipedia",
    }
    assert searxng.queries == ["capital of France"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": ""}, "query"),
        ({"query": "x", "top_k": 0}, "top_k"),
        ({"query": "x", "providers": ["bing9"]}, "providers"),
    ],
)
def test_bad_search_requests(tenant, searxng, body, param):
    response = tenant.client.post("/v1/search", body, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_circuit_breaker_skips_a_failing_provider(tenant, searxng, settings):
    settings.SEARCH_BREAKER_THRESHOLD = 2
    searxng.fail = True
    for _ in range(2):
        response = tenant.client.post("/v1/search", {"query": "x", "providers": ["web"]}, format="json")
        assert response.status_code == 502 and response.json()["error"]["code"] == "search_unavailable"
    searxng.fail = False
    response = tenant.client.post("/v1/search", {"query": "x", "providers": ["web"]}, format="json")
    assert response.status_code == 502 and "temporarily disabled" in response.json()["error"]["message"]
    assert len(searxng.queries) == 2  # the open circuit did not call the provider


def test_citation_markers_are_checked_on_literal_text():
    sources = [
        {"index": 1, "title": "A", "url": "https://a", "snippet": ""},
        {"index": 2, "title": "B", "url": "https://b", "snippet": ""},
    ]
    text = keep_valid_markers("Yes [1], no [3], maybe [2][0].", source_count=2)
    assert text == "Yes [1], no , maybe [2]."
    annotations = url_citations(text, sources)
    assert [a["url_citation"]["url"] for a in annotations] == ["https://a", "https://b"]
    assert text[annotations[0]["url_citation"]["start_index"] : annotations[0]["url_citation"]["end_index"]] == "[1]"


@pytest.fixture
def citing_model(tmp_path, searxng) -> ModelEndpoint:
    """A tiny model taught to answer the search-augmented prompt with one valid and one invented marker."""
    from apps.search.citations import sources_block
    from apps.search.providers import SearchResult

    results = [SearchResult(title=r["title"], url=r["url"], snippet=r["content"], source=r["engine"]) for r in RESULTS]
    conversation = [
        ChatMessage(role="system", content=sources_block(results)),
        ChatMessage(role="user", content="What is the capital of France?"),
        ChatMessage(role="assistant", content="Paris [1] [7]."),
    ]
    path = overfit_tiny_model(make_tiny_model(tmp_path / "m", family="tigerbot"), conversations=[conversation])
    return ModelEndpoint.objects.create(name="citing", family="tigerbot", path=str(path), max_new_tokens=24)


def test_search_augmented_chat_returns_sources_and_in_range_markers(tenant, citing_model):
    question = "What is the capital of France?"
    openai = tenant.client.post(
        "/v1/chat/completions",
        {
            "model": "citing",
            "temperature": 0,
            "search": {"top_k": 5},
            "messages": [{"role": "user", "content": question}],
        },
        format="json",
    ).json()
    message = openai["choices"][0]["message"]
    assert message["content"] == "Paris [1] ."  # the invented [7] is gone
    assert [s["index"] for s in openai["sources"]] == [1, 2] and openai["sources"][0]["url"] == RESULTS[0]["url"]
    assert message["annotations"][0]["url_citation"]["url"] == RESULTS[0]["url"]

    tiger = tenant.client.post(
        "/v1/chat/completions",
        {"model": "citing", "query": question, "internet": True, "temperature": 0},
        format="json",
    ).json()
    assert tiger["result"] == "Paris [1] ." and len(tiger["sources"]) == 2

    stream = tenant.client.post(
        "/v1/chat/completions",
        {"model": "citing", "query": question, "internet": True, "temperature": 0, "stream": True},
        format="json",
    )
    first = b"".join(stream.streaming_content).decode().split("\n\n")[0]
    assert '"sources"' in first  # sources come before the answer
