"""The /v1 endpoints refuse a body field they do not know, as chat and OpenAI's API do: a 400 naming the field, not a
misspelt option silently ignored. TigerBot's legacy routes stay lenient (old clients send extra fields)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.text.models import SummarizationJob

pytestmark = pytest.mark.django_db

CHAT = ("/v1/chat/completions", {"model": "any", "messages": [{"role": "user", "content": "hi"}]})
# Each endpoint's smallest body that passes field validation (the field check comes before any lookup).
BODIES = {
    "/v1/completions": {"model": "any", "prompt": "hi"},
    "/v1/embeddings": {"input": "hi"},
    "/v1/plugin/search": {"plugin": "wiki", "query": "hi"},
    "/v1/plugin/chat": {"plugin": "wiki", "query": "hi"},
    "/v1/summarization": {"text": "hi"},
    "/v1/search": {"query": "hi"},
    "/v1/batches": {"input_file_id": "file-x", "endpoint": "/v1/chat/completions", "completion_window": "24h"},
    "/v1/rerank": {"query": "hi", "documents": ["hi"]},
    "/v1/images/generations": {"prompt": "hi"},
    "/v1/fine_tuning/jobs": {"model": "any", "training_file": "file-x"},
    "/v1/plugin/custom/plugins": {"name": "Notes"},
    "/v1/api_keys": {"name": "ci"},
}


def _refusal_of(client, url: str, body: dict) -> dict:
    response = client.post(url, body, format="json")
    assert response.status_code == 400, response.content
    return response.json()


@pytest.mark.parametrize("url", list(BODIES))
def test_an_unknown_field_is_a_400_like_chats(tenant, url):
    chat_url, chat_body = CHAT
    expected = _refusal_of(tenant.client, chat_url, {**chat_body, "bogus": 1})
    assert expected["error"] == {
        "message": "bogus: bogus is not a known field.",
        "type": "invalid_request_error",
        "param": "bogus",
        "code": "invalid_request",
    }
    assert _refusal_of(tenant.client, url, {**BODIES[url], "bogus": 1}) == expected
    # Several: the first by name is reported.
    assert _refusal_of(tenant.client, url, {**BODIES[url], "zzz": 1, "aaa": 2})["error"]["param"] == "aaa"


def test_a_bad_value_of_a_known_field_is_reported_before_an_unknown_field(tenant):
    body = {"input": "", "bogus": 1}
    assert _refusal_of(tenant.client, "/v1/embeddings", body)["error"]["param"] == "input"


def test_an_unknown_form_field_of_an_upload_is_refused_and_nothing_is_stored(tenant):
    upload = SimpleUploadedFile("notes.txt", b"The river city held its dragon boat festival.")
    response = tenant.client.post(
        "/v1/summarization", {"file": upload, "model": "any", "bogus": "1"}, format="multipart"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == "bogus"
    assert SummarizationJob.objects.count() == 0


def test_the_legacy_routes_stay_lenient(tenant):
    response = tenant.client.post(
        "/bot-service/plugin/custom/create", {"name": "Notes", "clientVersion": "1.0"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["code"] == 200


def test_the_schema_documents_the_fields_openai_clients_send(anon):
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    def request_fields(url: str) -> dict:
        ref = schema["paths"][url]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]

    assert {"input", "model", "encoding_format", "dimensions", "user"} <= set(request_fields("/v1/embeddings"))
    assert {"input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"} <= set(
        request_fields("/v1/batches")
    )
    max_tokens = request_fields("/v1/plugin/chat")["max_tokens"]
    assert max_tokens["minimum"] == 1 and "the draft and the revised answer" in max_tokens["description"]
