"""Structured outputs, required tool calls, ``n`` and ``logprobs`` through ``POST /v1/chat/completions``, on real
tiny models: a random one (whose free output is noise, so every valid answer is the constraint's doing) and one
taught to greet (which never calls a tool on its own)."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest

from apps.chat.models import ModelEndpoint

from .conftest import GREETING_ANSWER, WEATHER_TOOL
from .test_api_chat import _openai, _sse

pytestmark = pytest.mark.django_db(transaction=True)

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city"],
        },
    },
    "required": ["name", "age", "tags", "address"],
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": WEATHER_TOOL.name,
            "description": WEATHER_TOOL.description,
            "parameters": WEATHER_TOOL.parameters,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Time in a zone",
            "parameters": {"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"]},
        },
    },
]


@pytest.fixture
def noise(db, tiny_models) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="noise",
        family="hf-template",
        path=str(tiny_models["hf-template"]),
        max_new_tokens=96,
        max_input_tokens=1024,
    )


@pytest.fixture
def chatty(db, chatty_model) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="chatty", family="tigerbot", path=str(chatty_model), max_new_tokens=64, max_input_tokens=1024
    )


def _json_schema(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}


def test_a_random_model_returns_schema_valid_json_for_every_sample(tenant, noise):
    response = _openai(
        tenant.client, model="noise", response_format=_json_schema(PERSON), temperature=1.0, n=6, seed=7, max_tokens=96
    )
    assert response.status_code == 200, response.json()
    choices = response.json()["choices"]
    assert [c["index"] for c in choices] == list(range(6))
    texts = [c["message"]["content"] for c in choices]
    for text in texts:
        jsonschema.validate(json.loads(text), PERSON)
    assert len(set(texts)) > 1  # seeds seed + i: the choices differ
    again = _openai(
        tenant.client, model="noise", response_format=_json_schema(PERSON), temperature=1.0, n=6, seed=7, max_tokens=96
    )
    assert [c["message"]["content"] for c in again.json()["choices"]] == texts


def test_json_closes_within_a_small_budget(tenant, noise):
    # An unbounded array and free strings: the random model would ramble until cut; the answer still parses.
    schema = {
        "type": "object",
        "properties": {"words": {"type": "array", "items": {"type": "string"}}},
        "required": ["words"],
    }
    response = _openai(
        tenant.client, model="noise", response_format=_json_schema(schema), temperature=1.0, seed=1, max_tokens=24
    )
    choice = response.json()["choices"][0]
    jsonschema.validate(json.loads(choice["message"]["content"]), schema)
    assert choice["finish_reason"] == "stop"


def test_json_object_mode_and_streaming(tenant, noise):
    response = _openai(
        tenant.client,
        model="noise",
        response_format={"type": "json_object"},
        stream=True,
        temperature=1.0,
        seed=3,
        max_tokens=64,
    )
    assert response.status_code == 200
    events = _sse(response)
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"])
    assert isinstance(json.loads(text), dict)


def test_required_tool_choice_always_calls_a_tool(tenant, chatty):
    response = _openai(tenant.client, tools=TOOLS, tool_choice="required", parallel_tool_calls=False)
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    schema = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}[call["function"]["name"]]
    jsonschema.validate(json.loads(call["function"]["arguments"]), schema)


def test_a_named_tool_choice_calls_that_tool(tenant, chatty):
    response = _openai(tenant.client, tools=TOOLS, tool_choice={"type": "function", "function": {"name": "get_time"}})
    calls = response.json()["choices"][0]["message"]["tool_calls"]
    assert calls and {c["function"]["name"] for c in calls} == {"get_time"}
    for call in calls:
        assert json.loads(call["function"]["arguments"])["zone"] in ("UTC", "CET")


def test_auto_tool_choice_still_lets_the_model_answer(tenant, chatty):
    choice = _openai(tenant.client, tools=TOOLS, tool_choice="auto").json()["choices"][0]
    assert choice["finish_reason"] != "tool_calls" and choice["message"]["content"]


def test_required_tool_call_streams_as_tool_call_deltas(tenant, chatty):
    events = _sse(_openai(tenant.client, tools=TOOLS, tool_choice="required", stream=True))
    deltas = [e["choices"][0] for e in events[:-1] if e["choices"]]
    assert any(d["delta"].get("tool_calls") for d in deltas)
    assert deltas[-1]["finish_reason"] == "tool_calls"
    assert not "".join(d["delta"].get("content") or "" for d in deltas).strip()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"response_format": _json_schema({"type": "wat"})}, "response_format"),
        ({"response_format": _json_schema({"$ref": "#/$defs/missing"})}, "response_format"),
        ({"response_format": _json_schema({"type": "object", "allOf": [{"type": "string"}]})}, "response_format"),
        ({"response_format": _json_schema({"type": "string", "pattern": "("})}, "response_format"),
        (
            {
                "tool_choice": "required",
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {"type": "object", "properties": {"x": {"type": "nope"}}},
                        },
                    }
                ],
            },
            "tools",
        ),
    ],
)
def test_schemas_the_grammar_engine_cannot_compile_are_400(tenant, noise, body, param):
    for stream in (False, True):
        response = _openai(tenant.client, model="noise", stream=stream, **body)
        assert response.status_code == 400, response
        error = response.json()["error"]
        assert error["param"] == param and error["code"] == "invalid_schema"


def test_logprobs_describe_the_generated_tokens(tenant, chatty):
    response = _openai(tenant.client, logprobs=True, top_logprobs=3)
    choice = response.json()["choices"][0]
    content = choice["logprobs"]["content"]
    assert "".join(entry["token"] for entry in content).startswith(choice["message"]["content"])
    for entry in content:
        assert len(entry["top_logprobs"]) == 3 and entry["logprob"] <= 0
        assert bytes(entry["bytes"]).decode(errors="replace") == entry["token"]
        tops = [top["logprob"] for top in entry["top_logprobs"]]
        assert tops == sorted(tops, reverse=True) and sum(math.exp(t) for t in tops) <= 1.0001
        assert entry["logprob"] == pytest.approx(tops[0])  # greedy picks the most likely token
    assert _openai(tenant.client).json()["choices"][0]["logprobs"] is None


def test_streamed_choices_and_logprobs(tenant, chatty):
    events = _sse(_openai(tenant.client, n=2, stream=True, logprobs=True, stream_options={"include_usage": True}))
    assert events[-1] == "[DONE]"
    texts, scored = {0: "", 1: ""}, {0: 0, 1: 0}
    for event in events[:-1]:
        for choice in event["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
            scored[choice["index"]] += len((choice["logprobs"] or {}).get("content") or ())
    assert texts == {0: GREETING_ANSWER, 1: GREETING_ANSWER}
    assert scored[0] == scored[1] > 0
    usage = events[-2]["usage"]
    single = _openai(tenant.client).json()["usage"]
    assert usage["prompt_tokens"] == single["prompt_tokens"]
    assert usage["completion_tokens"] == 2 * single["completion_tokens"]


def test_upstream_models_get_the_constraints_passed_through(live_server, tenant, noise, chatty):
    # This platform as its own OpenAI-compatible upstream: the upstream enforces what the proxy passes on.
    for target in (noise, chatty):
        ModelEndpoint.objects.create(
            name=f"{target.name}-up",
            family="hf-template",
            backend="openai-upstream",
            base_url=f"{live_server.url}/v1",
            upstream_api_key=tenant.key,
            upstream_model=target.name,
            max_new_tokens=target.max_new_tokens,
        )
    response = _openai(
        tenant.client,
        model="noise-up",
        response_format=_json_schema(PERSON),
        temperature=1.0,
        seed=5,
        max_tokens=96,
        logprobs=True,
        top_logprobs=1,
    )
    assert response.status_code == 200, response.json()
    choice = response.json()["choices"][0]
    jsonschema.validate(json.loads(choice["message"]["content"]), PERSON)
    assert choice["logprobs"]["content"]
    called = _openai(
        tenant.client, model="chatty-up", tools=TOOLS, tool_choice="required", parallel_tool_calls=False
    ).json()["choices"][0]
    assert called["finish_reason"] == "tool_calls" and len(called["message"]["tool_calls"]) == 1
    streamed = _sse(
        _openai(
            tenant.client,
            model="noise-up",
            response_format={"type": "json_object"},
            stream=True,
            temperature=1.0,
            seed=2,
            max_tokens=48,
        )
    )
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in streamed[:-1] if e["choices"])
    assert isinstance(json.loads(text), dict)


def test_required_tool_calls_close_within_a_small_budget(tenant, noise):
    for seed in range(3):
        response = _openai(
            tenant.client, model="noise", tools=TOOLS, tool_choice="required", temperature=1.0, seed=seed, max_tokens=48
        )
        assert response.status_code == 200, response.json()
        choice = response.json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls", choice
        for call in choice["message"]["tool_calls"]:
            schema = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}[call["function"]["name"]]
            jsonschema.validate(json.loads(call["function"]["arguments"]), schema)


def test_json_that_is_whole_when_the_budget_runs_out_is_a_stop(tenant, noise):
    # Budgets so tight that the closing JSON lands on the very last token, with no room left for the end token: the
    # grammar allowed nothing else, so the answer is whole, and a client (the SDK's parse()) must not read "length".
    schema = {"type": "object", "properties": {"w": {"type": "string"}}, "required": ["w"]}
    whole_on_the_last_token = 0
    for max_tokens in range(4, 24):
        body = _openai(
            tenant.client,
            model="noise",
            response_format=_json_schema(schema),
            temperature=1.0,
            seed=3,
            max_tokens=max_tokens,
        ).json()
        choice = body["choices"][0]
        try:
            json.loads(choice["message"]["content"])
        except ValueError:
            assert choice["finish_reason"] == "length", choice  # cut: the budget cannot hold the shortest answer
            continue
        assert choice["finish_reason"] == "stop", (max_tokens, choice)
        whole_on_the_last_token += body["usage"]["completion_tokens"] == max_tokens
    assert whole_on_the_last_token  # the case this is about did come up
