from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import account_rate_limit_set


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


@pytest.mark.django_db
def test_an_accounts_keys_share_its_limit_even_those_it_mints(make_tenant):
    tenant = make_tenant("ann")
    account_rate_limit_set(owner=tenant.user, rate_limit_per_minute=4)
    minted = tenant.client.post("/v1/api_keys", {"name": "second"}, format="json")
    assert minted.status_code == 201
    second = APIClient()
    second.credentials(HTTP_AUTHORIZATION=f"Bearer {minted.json()['key']}")

    responses = [client.get("/v1/models") for client in (tenant.client, second, tenant.client)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    # Each key may make 600 a minute; the account's 4 (the POST above was one) binds first: the headers tell it.
    assert [r["x-ratelimit-limit-requests"] for r in responses] == ["4", "4", "4"]
    assert [r["x-ratelimit-remaining-requests"] for r in responses] == ["2", "1", "0"]
    limited = second.get("/v1/models")
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert "this account" in error["message"] and "4 requests per minute" in error["message"]
    assert 1 <= int(limited["Retry-After"]) <= 60

    other = make_tenant("ben")  # another account's budget is its own
    assert other.client.get("/v1/models").status_code == 200


@pytest.mark.django_db
def test_the_key_limit_still_binds_below_the_accounts(make_tenant):
    tenant = make_tenant("cal", rate_limit_per_minute=1)
    account_rate_limit_set(owner=tenant.user, rate_limit_per_minute=100)
    first = tenant.client.get("/v1/models")
    assert first["x-ratelimit-limit-requests"] == "1"
    limited = tenant.client.get("/v1/models")
    assert limited.status_code == 429 and "this API key" in limited.json()["error"]["message"]


@pytest.mark.django_db
def test_the_platform_default_account_limit_applies_and_an_edit_takes_effect_at_once(make_tenant, settings):
    settings.ACCOUNT_RATE_LIMIT_PER_MINUTE = 2
    tenant = make_tenant("dee")
    assert [tenant.client.get("/v1/models").status_code for _ in range(3)] == [200, 200, 429]
    # The verified-key cache holds the account's limits; changing them reaches the next request.
    account_rate_limit_set(owner=tenant.user, rate_limit_per_minute=50)
    response = tenant.client.get("/v1/models")
    assert response.status_code == 200 and response["x-ratelimit-limit-requests"] == "50"
