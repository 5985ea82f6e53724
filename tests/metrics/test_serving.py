"""After real API requests, /metrics moves: requests by view and status, latency, time to first token, tokens
generated, the engine's queue gauges, and the 429/503 rejections."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.chat.selectors import endpoint_spec
from workers.runtime import engine
from workers.runtime.batching import EngineLimits
from workers.runtime.local import LocalRuntime
from workers.runtime.specs import ChatMessage, GenerationRequest, SamplingParams

CHAT = "/v1/chat/completions"


def _ask(client, max_tokens: int = 6):
    return client.post(
        CHAT,
        {
            "model": "metered",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": max_tokens,
            "temperature": 1.0,
        },
        format="json",
    )


def test_a_chat_completion_moves_the_request_latency_ttft_and_token_metrics(tenant, metered, scrape):
    responses = (
        "django_http_responses_total_by_status_view_method_total",
        {"view": "chat-completions", "status": "200", "method": "POST"},
    )
    latency = (
        "django_http_requests_latency_seconds_by_view_method_count",
        {"view": "chat-completions", "method": "POST"},
    )
    model = {"model": "metered"}
    names = [
        responses,
        latency,
        ("tigerplatform_time_to_first_token_seconds_count", model),
        ("tigerplatform_generated_tokens_total", model),
        ("tigerplatform_prompt_tokens_total", model),
    ]
    before = [scrape(name, **labels) for name, labels in names]

    response = _ask(tenant.client)

    assert response.status_code == 200, response.json()
    usage = response.json()["usage"]
    after = [scrape(name, **labels) for name, labels in names]
    assert after[0] == before[0] + 1
    assert after[1] == before[1] + 1
    assert after[2] == before[2] + 1
    assert after[3] == before[3] + usage["completion_tokens"]
    assert after[4] == before[4] + usage["prompt_tokens"]
    assert scrape("tigerplatform_engine_requests_waiting", **model) == 0
    assert scrape("tigerplatform_engine_requests_active", **model) == 0


@pytest.fixture
def one_slot(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRuntime]:
    """A runtime of this test's own whose engines take one request at a time."""
    own = LocalRuntime(limits=EngineLimits(max_pending=1, retry_after_s=3))
    monkeypatch.setattr(engine, "local_runtime", own)
    yield own
    own.close()


def test_the_engine_gauges_show_a_request_in_flight_and_a_full_engine_counts_its_503(tenant, metered, scrape, one_slot):
    model = {"model": "metered"}
    rejected = scrape("tigerplatform_engine_rejections_total", **model)
    held = one_slot.stream(
        request=GenerationRequest(
            spec=endpoint_spec(metered),
            messages=[ChatMessage(role="user", content="hi")],
            params=SamplingParams(temperature=1.0),
        )
    )
    try:
        next(held)  # a first token: the request is generating
        assert scrape("tigerplatform_engine_requests_active", **model) == 1
        assert scrape("tigerplatform_engine_requests_waiting", **model) == 0
        response = _ask(tenant.client)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "model_overloaded"
    finally:
        held.close()  # type: ignore[attr-defined]
    assert scrape("tigerplatform_engine_rejections_total", **model) == rejected + 1
    assert (
        scrape(
            "django_http_responses_total_by_status_view_method_total",
            view="chat-completions",
            status="503",
            method="POST",
        )
        >= 1
    )
    assert scrape("tigerplatform_engine_requests_active", **model) == 0


def test_a_rate_limited_request_moves_the_rejection_counter(make_tenant, scrape):
    limited = make_tenant("carol", rate_limit_per_minute=1)
    before = scrape("tigerplatform_rate_limited_requests_total")
    assert limited.client.get("/v1/models").status_code == 200
    assert limited.client.get("/v1/models").status_code == 429
    assert scrape("tigerplatform_rate_limited_requests_total") == before + 1
    assert (
        scrape("django_http_responses_total_by_status_view_method_total", view="model-list", status="429", method="GET")
        >= 1
    )
