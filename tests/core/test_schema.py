from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

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


# What gives away a description written for the code's readers: reStructuredText literals (the docstrings'
# convention; the API docs render Markdown), module paths, and notes on how a body is built.
_DEVELOPER_NOTE = re.compile(r"``|\b(?:apps|selectors|services|workers)\.\w|[Bb]uilt from|in its context|subclass")


def _descriptions(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield where, value
            yield from _descriptions(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _descriptions(value, f"{where}[{index}]")


@pytest.mark.django_db
def test_the_published_descriptions_are_written_for_api_users(anon):
    schema = yaml.safe_load(anon.get("/api/schema/").content)
    notes = [f"{where}: {text[:80]}" for where, text in _descriptions(schema, "") if _DEVELOPER_NOTE.search(text)]
    assert notes == []


@pytest.mark.django_db
def test_the_fields_a_body_accepts_and_ignores_are_documented(anon):
    components = yaml.safe_load(anon.get("/api/schema/").content)["components"]["schemas"]
    for component, field in [
        ("OpenAIChatRequest", "user"),
        ("OpenAIChatRequest", "metadata"),
        ("CompletionRequestRequest", "user"),
        ("ImageGenerationRequestRequest", "moderation"),
    ]:
        assert "Accepted and ignored" in components[component]["properties"][field]["description"], (component, field)
    assert "logit_bias" not in components["OpenAIChatRequest"]["properties"]  # refused, not ignored
