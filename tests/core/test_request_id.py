"""``X-Request-ID``: echoed when sane, made otherwise, on every response (errors and streams included), and on
every log line of the request, whose one access line says what was answered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.chat.models import ModelEndpoint
from tests.text.conftest import build_pdf, text_page
from workers.runtime.tiny import make_tiny_model

HEX32 = re.compile(r"[0-9a-f]{32}")


def _access(lines: list[dict], request_id: str) -> list[dict]:
    return [line for line in lines if line.get("event") == "access" and line.get("request_id") == request_id]


def test_a_sane_id_is_echoed_and_logged_with_the_access_fields(tenant, json_logs):
    response = tenant.client.get("/v1/models", HTTP_X_REQUEST_ID="req-42_a.b:c")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-42_a.b:c"
    [line] = _access(json_logs, "req-42_a.b:c")
    assert line["logger"] == "tigerplatform.access" and line["level"] == "INFO"
    assert line["method"] == "GET" and line["path"] == "/v1/models" and line["route"] == "/v1/models"
    assert line["status"] == 200 and line["bytes"] == len(response.content) > 0
    assert line["duration_ms"] >= 0 and line["timestamp"].endswith("+00:00")
    assert line["user_id"] == tenant.user.pk and line["api_key_id"] == tenant.api_key.pk


def test_an_id_is_made_when_there_is_none(anon):
    first, second = anon.get("/healthz"), anon.get("/healthz")
    assert HEX32.fullmatch(first["X-Request-ID"]) and HEX32.fullmatch(second["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "é-accent", '{"json": 1}', "-leading-dash", "a\tb"])
def test_an_insane_id_is_replaced(anon, bad, json_logs):
    response = anon.get("/healthz", HTTP_X_REQUEST_ID=bad)
    assert HEX32.fullmatch(response["X-Request-ID"])
    assert all(line.get("request_id") != bad for line in json_logs)


def test_error_responses_carry_the_id(db, anon, make_tenant):
    unknown = anon.get("/no/such/route/", HTTP_X_REQUEST_ID="r-404")
    assert unknown.status_code == 404 and unknown["X-Request-ID"] == "r-404"
    unauthenticated = anon.get("/v1/models", HTTP_X_REQUEST_ID="r-401")
    assert unauthenticated.status_code == 401 and unauthenticated["X-Request-ID"] == "r-401"
    limited = make_tenant("limited", rate_limit_per_minute=1)
    limited.client.get("/v1/models")
    throttled = limited.client.get("/v1/models", HTTP_X_REQUEST_ID="r-429")
    assert throttled.status_code == 429 and throttled["X-Request-ID"] == "r-429"


def test_each_request_has_exactly_one_access_line(tenant, json_logs):
    for n in range(3):
        tenant.client.get("/v1/models", HTTP_X_REQUEST_ID=f"one-{n}")
    assert [len(_access(json_logs, f"one-{n}")) for n in range(3)] == [1, 1, 1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", family="tigerbot")


def test_a_stream_carries_the_id_and_logs_its_access_line_when_it_ends(tenant, tiny_model, json_logs):
    ModelEndpoint.objects.create(name="tiny", family="tigerbot", path=str(tiny_model), max_new_tokens=8)
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    response = tenant.client.post("/v1/chat/completions", body, format="json", HTTP_X_REQUEST_ID="stream-1")
    assert response.status_code == 200 and response["X-Request-ID"] == "stream-1"
    assert _access(json_logs, "stream-1") == []  # not before the stream is read
    size = len(b"".join(response.streaming_content))
    response.close()
    [line] = _access(json_logs, "stream-1")
    assert line["status"] == 200 and line["bytes"] == size and line["route"] == "/v1/chat/completions"


def test_every_line_of_a_request_carries_its_id_and_a_download_is_logged(tenant, json_logs):
    """A request that logs beyond its access line (a pdf2text job is created), then a file download."""
    pdf = SimpleUploadedFile("doc.pdf", build_pdf(contents=[text_page("hello")]), content_type="application/pdf")
    response = tenant.client.post("/v1/pdf2text", {"file": pdf}, format="multipart", HTTP_X_REQUEST_ID="all-1")
    assert response.status_code in (201, 202)
    during = json_logs[: json_logs.index(_access(json_logs, "all-1")[0]) + 1]
    assert any(line.get("event") == "job_state" for line in during)
    assert {line.get("request_id") for line in during} == {"all-1"}

    download = tenant.client.get(f"/v1/pdf2text/{response.json()['id']}/file", HTTP_X_REQUEST_ID="file-1")
    content = b"".join(download.streaming_content)
    download.close()
    assert download["X-Request-ID"] == "file-1" and content.startswith(b"%PDF")
    [line] = _access(json_logs, "file-1")
    assert line["route"] == "/v1/pdf2text/<str:job_id>/file" and line["bytes"] == len(content)
