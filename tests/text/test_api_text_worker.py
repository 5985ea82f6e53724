"""pdf2text and summarization through a real Celery worker and Redis (``REDIS_URL``): the POST answers 202
at once, the job runs on the worker (queues ``ingest`` and ``serve``), ``?wait=`` returns when it ends."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.chat.models import ModelEndpoint
from apps.text.models import Pdf2TextJob
from tests.conftest import requires_redis
from tests.text.conftest import PDF_ROOT, MakePdf
from tests.text.test_api_pdf2text import SLOW_PAGE
from tests.text.test_api_summarization import DOCUMENT

pytestmark = [pytest.mark.redis, requires_redis]


def test_pdf2text_and_summarization_on_a_worker(celery_worker, tenant, tiny_chat_model: Path):
    path = PDF_ROOT / "pypdf/resources/crazyones.pdf"
    if not path.is_file():
        pytest.skip("shared PDF fixtures not found")
    upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="application/pdf")
    created = tenant.client.post("/v1/pdf2text", {"file": upload}, format="multipart")
    assert created.status_code in (201, 202), created.json()
    job = tenant.client.get(f"/v1/pdf2text/{created.json()['id']}?wait=30").json()
    assert job["status"] == "succeeded", job["error"]
    assert "The Crazy Ones" in job["text"]

    ModelEndpoint.objects.create(
        name="tiny-summarizer", family="tigerbot", path=str(tiny_chat_model), max_input_tokens=256, max_new_tokens=16
    )
    created = tenant.client.post("/v1/summarization", {"text": DOCUMENT, "model": "tiny-summarizer"}, format="json")
    assert created.status_code == 202 and created.json()["status"] in ("queued", "running")
    job = tenant.client.get(f"/v1/summarization/{created.json()['id']}?wait=30").json()
    assert job["status"] == "succeeded", job["error"]
    assert {step["stage"] for step in job["steps"]} == {"map", "reduce"}


def test_sigkill_of_the_extraction_child_on_a_worker(celery_worker, tenant, make_pdf: MakePdf):
    path = make_pdf(contents=[SLOW_PAGE], name="slow.pdf")
    upload = SimpleUploadedFile(path.name, path.read_bytes(), content_type="application/pdf")
    created = tenant.client.post("/v1/pdf2text", {"file": upload}, format="multipart")
    assert created.status_code == 202
    job_id = created.json()["id"]
    pid, deadline = None, time.monotonic() + 20
    while pid is None and time.monotonic() < deadline:
        pid = Pdf2TextJob.objects.filter(pk=job_id, status="running").values_list("child_pid", flat=True).first()
        time.sleep(0.05)
    assert pid is not None, "the job never reported its extraction process"
    os.kill(pid, signal.SIGKILL)
    job = tenant.client.get(f"/v1/pdf2text/{job_id}?wait=20").json()
    assert (job["status"], job["error"]["code"]) == ("failed", "worker_crashed")
    assert "SIGKILL" in job["error"]["message"]
