from __future__ import annotations

import pytest
import yaml


@pytest.mark.django_db
def test_openapi_schema_is_valid_and_lists_the_api(anon):
    from drf_spectacular.validation import validate_schema

    response = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json() if "json" in response["Content-Type"] else yaml.safe_load(response.content)
    validate_schema(schema)
    assert {"/v1/models", "/v1/usage", "/v1/api_keys", "/v1/api_keys/{key_id}", "/healthz"} <= set(schema["paths"])


def test_swagger_ui_is_served(anon):
    response = anon.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
