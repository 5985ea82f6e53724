"""The official `openai` package against a live server: models, chat, streaming, tools, and the upstream backend
(this platform pointed at another instance of itself)."""

from __future__ import annotations

import json

import openai
import pytest

from apps.chat.models import ModelEndpoint

from .conftest import GREETING_ANSWER, WEATHER_ANSWER, WEATHER_TOOL


@pytest.fixture
def sdk(live_server, tenant, chatty_model, tool_model) -> openai.OpenAI:
    ModelEndpoint.objects.create(name="chatty", family="tigerbot", path=str(chatty_model), max_new_tokens=32)
    ModelEndpoint.objects.create(name="tools", family="tigerbot", path=str(tool_model), max_new_tokens=64)
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0, timeout=60)


@pytest.mark.django_db(transaction=True)
def test_models_and_chat(sdk):
    assert {m.id for m in sdk.models.list()} == {"chatty", "tools"}
    completion = sdk.chat.completions.create(
        model="chatty", messages=[{"role": "user", "content": "你好"}], temperature=0
    )
    assert completion.choices[0].message.content == GREETING_ANSWER
    assert completion.usage.completion_tokens > 0


@pytest.mark.django_db(transaction=True)
def test_streaming(sdk):
    stream = sdk.chat.completions.create(
        model="chatty",
        messages=[{"role": "user", "content": "你好"}],
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == GREETING_ANSWER
    assert chunks[-1].usage.total_tokens > 0


@pytest.mark.django_db(transaction=True)
def test_tool_call_round_trip(sdk):
    tools = [
        {
            "type": "function",
            "function": {
                "name": WEATHER_TOOL.name,
                "description": WEATHER_TOOL.description,
                "parameters": WEATHER_TOOL.parameters,
            },
        }
    ]
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = sdk.chat.completions.create(model="tools", messages=messages, tools=tools, temperature=0)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ]
    second = sdk.chat.completions.create(model="tools", messages=messages, tools=tools, temperature=0)
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == WEATHER_ANSWER


@pytest.mark.django_db(transaction=True)
def test_errors_reach_the_sdk_typed(sdk):
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="chatty", messages=[{"role": "user", "content": "hi"}], n=30)
    bad_key = openai.OpenAI(base_url=str(sdk.base_url), api_key="tb-000000000000." + "x" * 43, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.models.list()


@pytest.mark.django_db(transaction=True)
def test_upstream_backend_against_another_instance(sdk, live_server, tenant):
    ModelEndpoint.objects.create(
        name="via-upstream",
        family="tigerbot",
        backend="openai-upstream",
        base_url=f"{live_server.url}/v1",
        upstream_api_key=tenant.key,
        upstream_model="chatty",
        max_new_tokens=32,
    )
    completion = sdk.chat.completions.create(
        model="via-upstream", messages=[{"role": "user", "content": "你好"}], temperature=0
    )
    assert completion.choices[0].message.content == GREETING_ANSWER
    stream = sdk.chat.completions.create(
        model="via-upstream", messages=[{"role": "user", "content": "你好"}], temperature=0, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == GREETING_ANSWER


@pytest.mark.django_db(transaction=True)
def test_unreachable_upstream_is_502(sdk):
    ModelEndpoint.objects.create(
        name="dead-upstream",
        family="tigerbot",
        backend="openai-upstream",
        base_url="http://127.0.0.1:9/v1",
        max_new_tokens=8,
    )
    with pytest.raises(openai.APIStatusError) as failure:
        sdk.chat.completions.create(model="dead-upstream", messages=[{"role": "user", "content": "hi"}])
    assert failure.value.status_code == 502
    assert failure.value.code == "upstream_error"
