from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_429_with_retry_after_past_the_keys_limit(make_tenant):
    tenant = make_tenant("eve", rate_limit_per_minute=3)
    responses = [tenant.client.get("/v1/models") for _ in range(4)]
    assert [r.status_code for r in responses[:3]] == [200, 200, 200]
    assert responses[0]["x-ratelimit-limit-requests"] == "3"
    assert [r["x-ratelimit-remaining-requests"] for r in responses[:3]] == ["2", "1", "0"]
    limited = responses[3]
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60


@pytest.mark.django_db
def test_limits_are_per_key(make_tenant):
    first = make_tenant("f1", rate_limit_per_minute=1)
    second = make_tenant("f2", rate_limit_per_minute=1)
    assert first.client.get("/v1/models").status_code == 200
    assert first.client.get("/v1/models").status_code == 429
    assert second.client.get("/v1/models").status_code == 200
