"""Chat through the Celery `serve` queue: a real worker and Redis, streaming over a Redis stream."""

from __future__ import annotations

import json

import pytest

from apps.chat.models import ModelEndpoint
from tests.conftest import requires_redis

from .conftest import GREETING_ANSWER, ramble_stream

pytestmark = [pytest.mark.redis, requires_redis]


@pytest.fixture
def chatty(transactional_db, chatty_model) -> ModelEndpoint:
    return ModelEndpoint.objects.create(name="chatty", family="tigerbot", path=str(chatty_model), max_new_tokens=32)


def _sse(response) -> list:
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line[6:]) for line in body.split("\n\n") if line.startswith("data: {")]


def test_chat_and_stream_through_a_worker(celery_worker, tenant, chatty):
    body = {"model": "chatty", "messages": [{"role": "user", "content": "你好"}], "temperature": 0}
    plain = tenant.client.post("/v1/chat/completions", body, format="json")
    assert plain.status_code == 200, plain.json()
    assert plain.json()["choices"][0]["message"]["content"] == GREETING_ANSWER

    events = _sse(tenant.client.post("/v1/chat/completions", {**body, "stream": True}, format="json"))
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events) == GREETING_ANSWER

    tiger = _sse(
        tenant.client.post(
            "/v1/chat/completions",
            {"model": "chatty", "query": "你好", "temperature": 0, "stream": True},
            format="json",
        )
    )
    assert tiger[-1]["finished"] is True and tiger[-1]["result"] == GREETING_ANSWER


def test_errors_come_back_from_the_worker(celery_worker, tenant, chatty):
    body = {"model": "chatty", "messages": [{"role": "user", "content": "长" * 5000}]}
    for stream in (False, True):
        response = tenant.client.post("/v1/chat/completions", {**body, "stream": stream}, format="json")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "context_length_exceeded"


def test_the_overall_timeout_still_bounds_the_wait(transactional_db, tenant, chatty, settings):
    """Below the claim timeout (no worker is a 503 sooner: test_serve_liveness.py), the wait is still bounded."""
    from tigerplatform.celery import app

    settings.CHAT_STREAM_FIRST_TIMEOUT_S = 1
    settings.CHAT_TASK_TIMEOUT_S = 1
    settings.SERVE_CLAIM_TIMEOUT_S = 30
    app.conf.task_always_eager = False  # no worker is running
    try:
        body = {"model": "chatty", "messages": [{"role": "user", "content": "你好"}]}
        for stream in (False, True):
            response = tenant.client.post("/v1/chat/completions", {**body, "stream": stream}, format="json")
            assert response.status_code == 504
            assert response.json()["error"]["code"] == "worker_timeout"
    finally:
        app.control.purge()
        app.conf.task_always_eager = True


def test_a_stream_left_early_is_cancelled_on_the_worker(celery_worker, tenant, rambler):
    import time

    from apps.chat.selectors import endpoint_spec
    from workers.runtime import engine

    response, _ = ramble_stream(tenant.client)
    # The worker runs in this process (threads), so its engine is this process's.
    live = engine.local_runtime.engine(spec=endpoint_spec(rambler))
    assert live.pending == 1
    response.close()  # what the WSGI server does when the client has gone
    deadline = time.monotonic() + 3  # the worker looks for the cancel flag every 0.5 s; 2000 tokens take longer
    while live.pending and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.pending == 0


def test_structured_outputs_choices_logprobs_and_completions_through_a_worker(celery_worker, tenant, chatty):
    schema = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}
    body = {
        "model": "chatty",
        "messages": [{"role": "user", "content": "你好"}],
        "temperature": 0,
        "n": 2,
        "logprobs": True,
        "top_logprobs": 2,
        "response_format": {"type": "json_schema", "json_schema": {"name": "g", "schema": schema}},
    }
    plain = tenant.client.post("/v1/chat/completions", body, format="json").json()
    assert [c["index"] for c in plain["choices"]] == [0, 1]
    for choice in plain["choices"]:
        assert isinstance(json.loads(choice["message"]["content"])["greeting"], str)
        assert len(choice["logprobs"]["content"][0]["top_logprobs"]) == 2

    events = _sse(tenant.client.post("/v1/chat/completions", {**body, "stream": True}, format="json"))
    texts = {0: "", 1: ""}
    for event in events:
        for choice in event["choices"]:
            texts[choice["index"]] += choice["delta"].get("content") or ""
    assert texts[0] == texts[1] == plain["choices"][0]["message"]["content"]

    bad = {**body, "response_format": {"type": "json_schema", "json_schema": {"name": "g", "schema": {"type": "x"}}}}
    for stream in (False, True):
        refused = tenant.client.post("/v1/chat/completions", {**bad, "stream": stream}, format="json")
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "response_format"

    completion = tenant.client.post(
        "/v1/completions",
        {"model": "chatty", "prompt": "你好", "max_tokens": 4, "temperature": 0, "n": 2},
        format="json",
    ).json()
    assert [c["index"] for c in completion["choices"]] == [0, 1]
    assert 2 <= completion["usage"]["completion_tokens"] <= 8
