"""POST /v1/chat/completions in both dialects, through the HTTP API, with real tiny models."""

from __future__ import annotations

import json

import pytest

from apps.chat.models import ModelEndpoint
from apps.usage.models import UsageRecord

from .conftest import GREETING_ANSWER


@pytest.fixture
def chatty(db, chatty_model) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="chatty",
        family="tigerbot",
        path=str(chatty_model),
        is_default=True,
        max_new_tokens=32,
        max_input_tokens=256,
    )


def _sse(response) -> list:
    body = b"".join(response.streaming_content).decode()
    events = [line[len("data: ") :] for line in body.split("\n\n") if line.startswith("data: ")]
    return [event if event == "[DONE]" else json.loads(event) for event in events]


def _openai(client, **body):
    payload = {"model": "chatty", "messages": [{"role": "user", "content": "你好"}], "temperature": 0, **body}
    return client.post("/v1/chat/completions", payload, format="json")


@pytest.mark.django_db(transaction=True)
def test_openai_dialect_answers_and_records_usage(tenant, chatty):
    response = _openai(tenant.client)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "chatty"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == GREETING_ANSWER
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    record = UsageRecord.objects.get(owner=tenant.user)
    assert (record.model, record.prompt_tokens, record.completion_tokens) == (
        "chatty",
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )


@pytest.mark.django_db(transaction=True)
def test_tigerbot_dialect_and_its_stream(tenant, chatty):
    body = {"query": "你好", "session": [], "temperature": 0}
    plain = tenant.client.post("/v1/chat/completions", body, format="json").json()
    assert plain["result"] == GREETING_ANSWER
    assert plain["total_tokens"] > plain["input_tokens"] > 0

    events = _sse(tenant.client.post("/v1/chat/completions", {**body, "stream": True}, format="json"))
    assert all(e["finished"] is False for e in events[:-1]) and events[-1]["finished"] is True
    assert "".join(e["new_text"] for e in events[:-1]) == GREETING_ANSWER
    assert events[-1]["result"] == GREETING_ANSWER and events[-1]["input_tokens"] == plain["input_tokens"]
    assert UsageRecord.objects.filter(owner=tenant.user).count() == 2


@pytest.mark.django_db
def test_openai_stream_with_usage(tenant, chatty):
    events = _sse(_openai(tenant.client, stream=True, stream_options={"include_usage": True}))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == GREETING_ANSWER
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish == ["stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


@pytest.mark.django_db
def test_max_tokens_gives_length(tenant, chatty):
    body = _openai(tenant.client, max_tokens=2).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


@pytest.mark.django_db
def test_stop_sequence_is_trimmed(tenant, chatty):
    stop_at = GREETING_ANSWER[3:5]
    body = _openai(tenant.client, stop=[stop_at]).json()
    assert body["choices"][0]["message"]["content"] == GREETING_ANSWER[:3]
    assert body["choices"][0]["finish_reason"] == "stop"


@pytest.mark.django_db
def test_seeded_sampling_is_reproducible(tenant, tiny_models):
    ModelEndpoint.objects.create(name="random", family="tigerbot", path=str(tiny_models["tigerbot"]))

    def sample(seed: int) -> str:
        body = _openai(
            tenant.client,
            model="random",
            temperature=1.5,
            top_p=0.95,
            top_k=50,
            seed=seed,
            max_tokens=12,
            repetition_penalty=1.1,
        )
        return body.json()["choices"][0]["message"]["content"]

    assert sample(7) == sample(7)
    assert len({sample(7), sample(8), sample(9)}) > 1  # the seed, not the model, made the first two equal


@pytest.mark.django_db
def test_long_history_is_truncated_not_rejected(tenant, chatty):
    history = []
    for index in range(40):
        history += [{"role": "user", "content": f"第{index}个问题 " * 5}, {"role": "assistant", "content": "好" * 20}]
    messages = [{"role": "system", "content": "你是助手"}, *history, {"role": "user", "content": "你好"}]
    response = _openai(tenant.client, messages=messages)
    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens"] <= chatty.max_input_tokens


@pytest.mark.django_db
def test_over_long_last_turn_is_400(tenant, chatty):
    response = _openai(tenant.client, messages=[{"role": "user", "content": "长" * 5000}])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert response.json()["error"]["param"] == "messages"


@pytest.mark.django_db
def test_unknown_model_is_404(tenant, chatty):
    response = _openai(tenant.client, model="gpt-17")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "messages[0].content"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10_000}, "max_tokens"),
        ({"n": 9}, "n"),
        ({"n": 0}, "n"),
        ({"stop": [""]}, "stop"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logprobs": "yes please"}, "logprobs"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "bad name!", "schema": {}}}},
            "response_format.json_schema.name",
        ),
        ({"tool_choice": "sometimes", "tools": []}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"model": None}, "model"),
    ],
)
def test_bad_openai_input_is_400_naming_the_field(tenant, chatty, body, param):
    response = _openai(tenant.client, **body)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["param"] == param


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": ""}, "query"),
        ({"query": "   "}, "query"),
        ({"query": 3, "session": "x"}, "session"),
        ({"query": "hi", "session": [{"human": "a"}]}, "session[0].assistant"),
        ({"query": "hi", "internet": "maybe"}, "internet"),
    ],
)
def test_bad_tigerbot_input_is_400_naming_the_field(tenant, chatty, body, param):
    response = tenant.client.post("/v1/chat/completions", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["param"] == param


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["{oops", "[1, 2]", "null", '"text"', "{}"])
def test_malformed_bodies_are_400(tenant, chatty, raw):
    response = tenant.client.generic("POST", "/v1/chat/completions", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid_json", "invalid_request"}


@pytest.mark.django_db
def test_models_list_shows_registered_models(tenant, chatty):
    body = tenant.client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["chatty"]
    assert set(body["data"][0]) == {"id", "object", "created", "owned_by"}


@pytest.mark.django_db
def test_legacy_gpt_route(tenant, chatty):
    response = tenant.client.post("/bot-service/ai_service/gpt", {"text": "你好"}, format="json")
    body = response.json()
    assert body["code"] == 200 and isinstance(body["data"]["result"], list) and body["data"]["result"][0]
    bad = tenant.client.post("/bot-service/ai_service/gpt", {"text": "你好", "modelVersion": "nope"}, format="json")
    assert bad.status_code == 404
    assert bad.json()["code"] == 404 and bad.json()["data"]["error"]["code"] == "model_not_found"


@pytest.mark.django_db
def test_internet_when_no_search_provider_answers_is_a_clear_502(tenant, chatty, settings):
    settings.SEARCH_LOCAL_PLUGIN = "no-such-plugin"
    response = tenant.client.post("/v1/chat/completions", {"query": "hi", "internet": True}, format="json")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "search_unavailable"
