from __future__ import annotations

import pytest
from rest_framework.test import APIClient


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
def test_malformed_json_is_400(tenant):
    response = tenant.client.generic("POST", "/v1/api_keys", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
