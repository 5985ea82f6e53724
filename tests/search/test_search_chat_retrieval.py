"""Search-augmented chat: the query it searched with (a follow-up made standalone first), and `search.filters` /
`search.score_threshold` on the local plugins provider."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.chat.models import ModelEndpoint
from apps.core.dispatch import wait_for_embedded_tasks
from apps.search import rewrite
from tests.chat.conftest import chatty_model  # noqa: F401  (a tiny real chat model, built once per session)
from workers.runtime.specs import GenerationResult

CORPUS = [
    {
        "id": "leave-de",
        "title": "Parental leave (Germany)",
        "text": "Parental leave in Germany: each parent may take up to three years per child.",
        "meta": {"country": "DE", "year": 2023},
    },
    {
        "id": "leave-fr",
        "title": "Parental leave (France)",
        "text": "Parental leave in France: each parent may take up to three years, shared between the parents.",
        "meta": {"country": "FR", "year": 2021},
    },
    {"id": "bread", "title": "Baking", "text": "Knead the dough, let it rise for an hour and bake the bread."},
]
QUESTION = "How long is parental leave?"


@pytest.fixture
def chatty(db, chatty_model):  # noqa: F811
    return ModelEndpoint.objects.create(
        name="chatty",
        family="tigerbot",
        path=str(chatty_model),
        is_default=True,
        max_new_tokens=8,
        max_input_tokens=1024,
    )


@pytest.fixture
def local_plugin(transactional_db, tenant, settings):
    """The tenant's own plugin as the `plugins` search provider."""
    from apps.plugins import indexes

    indexes.forget()
    plugin_id = tenant.client.post("/v1/plugin/custom/plugins", {"name": "Handbook"}, format="json").json()["plugin_id"]
    corpus = SimpleUploadedFile("handbook.jsonl", "\n".join(json.dumps(r) for r in CORPUS).encode())
    response = tenant.client.post(
        f"/v1/plugin/custom/plugins/{plugin_id}/files", {"file": [corpus]}, format="multipart"
    )
    assert response.status_code == 202, response.content
    wait_for_embedded_tasks()
    settings.SEARCH_LOCAL_PLUGIN = plugin_id
    yield plugin_id
    indexes.forget()


def _chat(tenant, search, *, messages=None, **body):
    return tenant.client.post(
        "/v1/chat/completions",
        {
            "model": "chatty",
            "temperature": 0,
            "search": search,
            "messages": messages or [{"role": "user", "content": QUESTION}],
            **body,
        },
        format="json",
    )


def _titles(body) -> list[str]:
    return [source["title"] for source in body["sources"]]


def test_filters_and_score_threshold_reach_the_plugins_provider(tenant, chatty, local_plugin):
    plain = _chat(tenant, {"providers": ["plugins"], "top_k": 3}).json()
    assert {"Parental leave (Germany)", "Parental leave (France)"} <= set(_titles(plain))

    french = _chat(
        tenant, {"providers": ["plugins"], "top_k": 3, "filters": {"key": "country", "op": "eq", "value": "FR"}}
    ).json()
    assert _titles(french) == ["Parental leave (France)"]
    recent = _chat(
        tenant,
        {
            "providers": ["plugins"],
            "top_k": 3,
            "filters": {"and": [{"key": "year", "op": "gte", "value": 2022}, {"key": "country", "op": "exists"}]},
        },
    ).json()
    assert _titles(recent) == ["Parental leave (Germany)"]

    scores = {
        hit["title"]: hit["score"]
        for hit in tenant.client.post(
            "/v1/plugin/search", {"plugin": local_plugin, "query": QUESTION, "top_k": 3}, format="json"
        ).json()["data"]
    }
    best = max(scores.values())
    strict = _chat(tenant, {"providers": ["plugins"], "top_k": 3, "score_threshold": best}).json()
    assert _titles(strict) == [title for title, score in scores.items() if score >= best]
    nothing = _chat(tenant, {"providers": ["plugins"], "score_threshold": best + 1})
    assert nothing.status_code == 200 and nothing.json()["sources"] == []

    # Without providers the local plugins are the default when no web search is configured.
    default = _chat(tenant, {"filters": {"key": "country", "op": "in", "value": ["DE"]}}).json()
    assert _titles(default) == ["Parental leave (Germany)"]


@pytest.mark.parametrize(
    ("search", "param", "words"),
    [
        ({"filters": {"key": "country", "op": "eq", "value": "FR"}}, "search.filters", "web"),  # web is the default
        ({"providers": ["web"], "score_threshold": 0.5}, "search.score_threshold", "web"),
        ({"providers": ["plugins", "web"], "filters": {"key": "a", "op": "exists"}}, "search.filters", "web"),
        (
            {"providers": ["plugins"], "filters": {"key": "country", "op": "like", "value": "F"}},
            "search.filters",
            "search.filters.op",
        ),
        ({"providers": ["plugins"], "filters": "country=FR"}, "search.filters", "expected an object"),
        ({"providers": ["plugins"], "filters": {"and": []}}, "search.filters", "non-empty list"),
        ({"providers": ["plugins"], "score_threshold": -1}, "search.score_threshold", ">= 0"),
        ({"providers": ["plugins"], "score_threshold": "high"}, "search.score_threshold", ">= 0"),
        ({"providers": ["plugins"], "score_threshold": True}, "search.score_threshold", ">= 0"),
        ({"providers": ["bing"]}, "search.providers", "bing"),
        ({"top_k": True}, "search.top_k", "integer"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_bad_search_options_are_400s(tenant, chatty, searxng, search, param, words, stream):
    response = _chat(tenant, search, stream=stream)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"]
    assert searxng.queries == []  # refused before searching


def test_nothing_to_search_for_is_a_400(tenant, chatty, searxng):
    response = _chat(tenant, True, messages=[{"role": "user", "content": "  "}])
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    assert searxng.queries == []


@pytest.fixture
def scripted_rewrite(monkeypatch):
    calls = []

    def fake(*, request):
        calls.append(request.messages)
        return GenerationResult(text=fake.reply, prompt_tokens=90, completion_tokens=8, finish_reason="stop")

    fake.reply = "How long is parental leave in France?"
    fake.calls = calls
    monkeypatch.setattr(rewrite, "chat_complete", fake)
    return fake


CONVERSATION = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Which country has the longest parental leave, Germany or France?"},
    {"role": "assistant", "content": "France has the longer parental leave."},
    {"role": "user", "content": "How long is it there?"},
]


def test_the_query_searched_with_is_in_the_answer(tenant, chatty, searxng, scripted_rewrite):
    single = _chat(tenant, {"top_k": 2}).json()
    assert single["search_query"] == QUESTION and single["search_query_method"] == "last_turn"
    assert scripted_rewrite.calls == []  # one turn: nothing to rewrite, no extra model call

    follow_up = _chat(tenant, {"top_k": 2}, messages=CONVERSATION).json()
    assert follow_up["search_query"] == "How long is parental leave in France?"
    assert follow_up["search_query_method"] == "model"
    assert searxng.queries == [QUESTION, "How long is parental leave in France?"]
    assert scripted_rewrite.calls[0][-1].content.endswith("Follow-up: How long is it there?")

    scripted_rewrite.reply = "It is three years."  # an answer, not a question
    fallback = _chat(tenant, {"top_k": 2}, messages=CONVERSATION).json()
    assert fallback["search_query_method"] == "fallback"
    assert fallback["search_query"] == (
        "How long is it there? Which country has the longest parental leave, Germany or France?"
    )
    assert searxng.queries[-1] == fallback["search_query"]

    stream = _chat(tenant, {"top_k": 2}, messages=CONVERSATION, stream=True)
    first = json.loads(b"".join(stream.streaming_content).decode().split("\n\n")[0][len("data: ") :])
    assert first["search_query"] == fallback["search_query"] and first["search_query_method"] == "fallback"
    assert len(first["sources"]) == 2

    tiger = tenant.client.post(
        "/v1/chat/completions",
        {
            "model": "chatty",
            "query": "How long is it there?",
            "internet": True,
            "temperature": 0,
            "session": [{"human": CONVERSATION[1]["content"], "assistant": CONVERSATION[2]["content"]}],
        },
        format="json",
    ).json()
    assert tiger["search_query"] == fallback["search_query"] and tiger["search_query_method"] == "fallback"
