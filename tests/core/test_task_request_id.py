"""A request's id follows its work: job state lines logged by its tasks (on the embedded background threads, or
on a real Celery worker) and the serving worker's line carry the id of the request that started them."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.chat.models import ModelEndpoint
from apps.core.dispatch import wait_for_embedded_tasks
from tests.conftest import requires_redis
from tests.text.conftest import build_pdf, text_page
from workers.runtime.tiny import make_tiny_model


def _start_pdf2text(client, request_id: str) -> str:
    pdf = SimpleUploadedFile("doc.pdf", build_pdf(contents=[text_page("hello")]), content_type="application/pdf")
    response = client.post("/v1/pdf2text", {"file": pdf}, format="multipart", HTTP_X_REQUEST_ID=request_id)
    assert response.status_code in (201, 202), response.json()
    return response.json()["id"]


def _job_states(lines: list[dict], job_id: str) -> list[tuple[str | None, str, str | None]]:
    return [
        (line["old_status"], line["new_status"], line.get("request_id"))
        for line in lines
        if line.get("event") == "job_state" and line["job_id"] == job_id
    ]


def test_embedded_tasks_log_with_the_id_of_the_request(transactional_db, tenant, json_logs):
    job_id = _start_pdf2text(tenant.client, "embedded-1")
    wait_for_embedded_tasks(timeout_s=60)
    assert _job_states(json_logs, job_id) == [
        (None, "queued", "embedded-1"),
        ("queued", "running", "embedded-1"),
        ("running", "succeeded", "embedded-1"),
    ]
    line = next(line for line in json_logs if line.get("event") == "job_state" and line["job_id"] == job_id)
    assert line["job_kind"] == "text.pdf2textjob" and line["field"] == "status"


@pytest.mark.redis
@requires_redis
def test_a_worker_logs_the_tasks_of_a_request_with_its_id(celery_worker, tenant, json_logs, tmp_path: Path):
    job_id = _start_pdf2text(tenant.client, "worker-1")
    job = tenant.client.get(f"/v1/pdf2text/{job_id}?wait=30").json()
    assert job["status"] == "succeeded", job
    assert _job_states(json_logs, job_id) == [
        (None, "queued", "worker-1"),
        ("queued", "running", "worker-1"),
        ("running", "succeeded", "worker-1"),
    ]

    model = make_tiny_model(tmp_path / "model", family="tigerbot")
    ModelEndpoint.objects.create(name="tiny", family="tigerbot", path=str(model), max_new_tokens=4)
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    for stream, request_id in ((False, "serve-1"), (True, "serve-2")):
        response = tenant.client.post(
            "/v1/chat/completions", {**body, "stream": stream}, format="json", HTTP_X_REQUEST_ID=request_id
        )
        assert response.status_code == 200
        if stream:
            b"".join(response.streaming_content)
        [served] = [
            line for line in json_logs if line.get("event") == "served" and line.get("request_id") == request_id
        ]
        assert served["model"] == "tiny" and served["stream"] is stream and served["logger"] == "apps.chat.tasks"
        assert served["prompt_tokens"] > 0 and 0 < served["completion_tokens"] <= 4 and served["duration_ms"] > 0
