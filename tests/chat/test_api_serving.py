"""Serving behaviour through the HTTP API, embedded mode (the web process holds the engines): a full engine
answers 503 with Retry-After, a client that disconnects frees its slot, and slow first tokens get keep-alives."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from apps.chat.models import ModelEndpoint
from apps.chat.selectors import endpoint_spec
from apps.core.sse import KEEPALIVE, sse_response
from workers.runtime import engine
from workers.runtime.batching import EngineLimits
from workers.runtime.local import LocalRuntime
from workers.runtime.specs import ChatMessage, GenerationRequest, SamplingParams

from .conftest import RAMBLE


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRuntime]:
    """A runtime of this test's own (two requests at most per engine), in place of the process-wide one."""
    own = LocalRuntime(limits=EngineLimits(max_pending=2, retry_after_s=4))
    monkeypatch.setattr(engine, "local_runtime", own)
    yield own


def _wait_idle(runtime: LocalRuntime, endpoint: ModelEndpoint, timeout_s: float = 10) -> int:
    deadline = time.monotonic() + timeout_s
    live = runtime.engine(spec=endpoint_spec(endpoint))
    while live.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    return live.pending


def test_a_full_engine_answers_503_with_retry_after(runtime, tenant, rambler):
    spec = endpoint_spec(rambler)
    held = [
        runtime.stream(
            request=GenerationRequest(
                spec=spec, messages=[ChatMessage(role="user", content="hi")], params=SamplingParams(temperature=1.0)
            )
        )
        for _ in range(2)
    ]
    try:
        for stream in (False, True):
            response = tenant.client.post(
                "/v1/chat/completions",
                {
                    "model": "rambler",
                    "messages": [{"role": "user", "content": "hi"}],
                    "stream": stream,
                },
                format="json",
            )
            assert response.status_code == 503
            assert response["Retry-After"] == "4"
            assert response.json()["error"]["code"] == "model_overloaded"
    finally:
        for stream in held:
            stream.close()  # type: ignore[attr-defined]
    assert _wait_idle(runtime, rambler) == 0
    ok = tenant.client.post(
        "/v1/chat/completions", {"model": "rambler", "query": "hi", "max_new_tokens": 4}, format="json"
    )
    assert ok.status_code == 200, ok.json()


def test_a_client_that_disconnects_cancels_its_request_and_frees_the_slot(runtime, tenant, rambler, live_server):
    body = {"model": "rambler", **RAMBLE, "stream": True, "max_tokens": 2000}
    headers = {"Authorization": f"Bearer {tenant.key}"}
    with (
        httpx.Client(base_url=live_server.url, timeout=30) as http,
        http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert any(line.startswith("data: {") for line in response.iter_lines())  # the role, before any token
        assert runtime.engine(spec=endpoint_spec(rambler)).pending == 1
    # Leaving the block closed the connection before the first token; the 1988-token answer takes seconds more.
    assert _wait_idle(runtime, rambler, timeout_s=2) == 0


def _slow_events(delay_s: float) -> Iterator[dict]:
    time.sleep(delay_s)
    yield {"n": 1}
    yield {"n": 2}


def test_keepalive_comments_while_the_first_event_is_awaited(settings):
    settings.SSE_KEEPALIVE_S = 0.05
    body = b"".join(sse_response(_slow_events(0.4)).streaming_content)
    head, _, rest = body.partition(b"data: ")
    assert head.count(KEEPALIVE) >= 3 and head == KEEPALIVE * head.count(KEEPALIVE)
    assert rest == b'{"n": 1}\n\ndata: {"n": 2}\n\n'  # keep-alives only before the first event


def test_no_keepalive_when_the_first_event_comes_quickly(settings):
    settings.SSE_KEEPALIVE_S = 5
    body = b"".join(sse_response(_slow_events(0)).streaming_content)
    assert body == b'data: {"n": 1}\n\ndata: {"n": 2}\n\n'


def test_leaving_during_the_wait_closes_the_event_source(settings):
    settings.SSE_KEEPALIVE_S = 0.02
    closed: list[bool] = []

    def events() -> Iterator[dict]:
        try:
            time.sleep(0.2)
            yield {"n": 1}
            yield {"n": 2}
        finally:
            closed.append(True)

    response = sse_response(events())
    assert next(iter(response.streaming_content)) == KEEPALIVE
    response.close()  # what the WSGI server does when the client has gone
    deadline = time.monotonic() + 5
    while not closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert closed == [True]
