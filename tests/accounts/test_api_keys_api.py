from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiKey


@pytest.mark.django_db
def test_create_list_retrieve_revoke(tenant):
    created = tenant.client.post("/v1/api_keys", {"name": "ci", "rate_limit_per_minute": 5}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("tb-") and body["rate_limit_per_minute"] == 5

    listed = tenant.client.get("/v1/api_keys").json()
    assert listed["object"] == "list"
    assert {item["id"] for item in listed["data"]} == {body["id"], tenant.api_key.pk}
    assert all("key" not in item for item in listed["data"])  # the plaintext is shown once

    new_client = APIClient()
    new_client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['key']}")
    assert new_client.get("/v1/models").status_code == 200
    assert tenant.client.delete(f"/v1/api_keys/{body['id']}").json()["revoked"] is True
    assert new_client.get("/v1/models").status_code == 401


@pytest.mark.django_db
def test_another_tenants_key_is_404(tenant, other_tenant):
    for method in ("get", "delete"):
        response = getattr(other_tenant.client, method)(f"/v1/api_keys/{tenant.api_key.pk}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert tenant.client.get("/v1/models").status_code == 200  # bob could not revoke alice's key


@pytest.mark.django_db
def test_pagination_with_after_and_limit(tenant):
    for index in range(5):
        tenant.client.post("/v1/api_keys", {"name": f"k{index}"}, format="json")
    first = tenant.client.get("/v1/api_keys?limit=4").json()
    assert len(first["data"]) == 4 and first["has_more"] is True
    second = tenant.client.get(f"/v1/api_keys?limit=4&after={first['last_id']}").json()
    assert len(second["data"]) == 2 and second["has_more"] is False
    ids = [item["id"] for item in first["data"] + second["data"]]
    assert len(set(ids)) == 6


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "param"), [("limit=0", "limit"), ("limit=abc", "limit"), ("limit=1000", "limit"), ("after=nope", "after")]
)
def test_bad_page_params_are_400(tenant, query, param):
    response = tenant.client.get(f"/v1/api_keys?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"rate_limit_per_minute": "many"}, "rate_limit_per_minute"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"expires_at": "yesterday"}, "expires_at"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x" * 101}, "name"),
    ],
)
def test_bad_create_input_is_400_with_param(tenant, payload, param):
    response = tenant.client.post("/v1/api_keys", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


@pytest.mark.django_db
def test_an_unknown_field_is_400_and_creates_no_key(tenant):
    # A misspelt rate_limit_per_minute would otherwise mint a key on the creating key's limit.
    response = tenant.client.post("/v1/api_keys", {"name": "ci", "rate_limit": 5}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["param"], error["code"], error["message"]) == (
        "rate_limit",
        "invalid_request",
        "rate_limit: rate_limit is not a known field.",
    )
    assert "ci" not in [key["name"] for key in tenant.client.get("/v1/api_keys").json()["data"]]


@pytest.mark.django_db
def test_malformed_json_is_400(tenant):
    response = tenant.client.generic("POST", "/v1/api_keys", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.django_db
def test_a_key_mints_no_key_above_its_own_limit_or_beyond_its_expiry(make_tenant):
    expiry = timezone.now() + timedelta(days=7)
    limited = make_tenant("carol", rate_limit_per_minute=10, expires_at=expiry)

    for payload, code, param in (
        ({"rate_limit_per_minute": 1_000_000}, "rate_limit_above_creating_key", "rate_limit_per_minute"),
        ({"expires_at": (expiry + timedelta(days=1)).isoformat()}, "expires_after_creating_key", "expires_at"),
    ):
        refused = limited.client.post("/v1/api_keys", {"name": "escape", **payload}, format="json")
        assert refused.status_code == 400, refused.json()
        assert (refused.json()["error"]["code"], refused.json()["error"]["param"]) == (code, param)
    assert ApiKey.objects.filter(owner=limited.user).count() == 1  # nothing was created

    inherited = limited.client.post("/v1/api_keys", {"name": "child"}, format="json").json()
    assert inherited["rate_limit_per_minute"] == 10
    assert inherited["expires_at"] == int(expiry.timestamp())
    lower = limited.client.post(
        "/v1/api_keys",
        {"rate_limit_per_minute": 1, "expires_at": (expiry - timedelta(days=1)).isoformat()},
        format="json",
    )
    assert lower.status_code == 201 and lower.json()["rate_limit_per_minute"] == 1


@pytest.mark.django_db
def test_a_key_on_the_default_limit_mints_keys_up_to_it(tenant, settings):
    settings.DEFAULT_RATE_LIMIT_PER_MINUTE = 600
    above = tenant.client.post("/v1/api_keys", {"rate_limit_per_minute": 601}, format="json")
    assert above.status_code == 400 and above.json()["error"]["code"] == "rate_limit_above_creating_key"
    created = tenant.client.post("/v1/api_keys", {"rate_limit_per_minute": 600}, format="json").json()
    assert created["rate_limit_per_minute"] == 600 and created["expires_at"] is None
