"""pdf2text through the HTTP API: real PDFs, refused uploads, tenancy, a killed extraction and stale jobs.

Tasks run in-process (no broker) once the job's row is committed; inside each test's transaction that is at
once (``run_on_commit_at_once``). Tests that watch a job from another thread use real transactions.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.utils import timezone

from apps.text.models import Pdf2TextJob
from apps.text.tasks import fail_stale_jobs_task
from tests.text.conftest import PDF_ROOT, stored_files, text_page

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("run_on_commit_at_once")]

# About a million text operators: pypdf needs well over ten seconds for this page (see test_pdf_isolation).
SLOW_PAGE = b"BT /F1 12 Tf 72 720 Td " + b"(x) Tj " * 1_000_000 + b"ET"


def upload(client: Any, data: bytes | Path, *, name: str = "doc.pdf", query: str = "", **fields: Any) -> Any:
    content = data.read_bytes() if isinstance(data, Path) else data
    if isinstance(data, Path):
        name = data.name
    body = {"file": SimpleUploadedFile(name, content, content_type="application/pdf"), **fields}
    return client.post(f"/v1/pdf2text{query}", body, format="multipart")


def fixture(relative: str) -> Path:
    path = PDF_ROOT / relative
    if not path.is_file():
        pytest.skip(f"shared PDF fixture {relative} not found")
    return path


def assert_nothing_stored(settings: Any) -> None:
    assert Pdf2TextJob.objects.count() == 0
    assert stored_files(settings.MEDIA_ROOT) == []


# --- Real PDFs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "fields", "status", "code", "expect_text"),
    [
        ("pypdf/resources/crazyones.pdf", {}, "succeeded", None, "The Crazy Ones"),
        ("pdfminer/zen_of_python_corrupted.pdf", {}, "succeeded", None, "Beautiful is better than ugly."),
        ("pypdf/resources/crazyones-encrypted-256.pdf", {}, "failed", "password_required", None),
        (
            "py-pdf-sample-files/005-libreoffice-writer-password/libreoffice-writer-password.pdf",
            {"password": "openpassword"},
            "succeeded",
            None,
            "Lorem ipsum",
        ),
        ("pdfminer/encryption/aes-256-r6.pdf", {"password": "ownersecret"}, "succeeded", None, "Hello World"),
        ("pdfminer/encryption/aes-256-r6.pdf", {"password": "wrong"}, "failed", "invalid_password", None),
        ("pypdf/resources/encryption/r6-empty-password.pdf", {}, "succeeded", None, None),
        ("pdfminer/simple1.pdf", {}, "failed", "invalid_pdf", None),
        ("py-pdf-sample-files/019-grayscale-image/grayscale-image.pdf", {}, "succeeded", None, None),
    ],
    ids=[
        "plain",
        "corrupted-zen",
        "encrypted-no-password",
        "encrypted-password",
        "aes256-owner-password",
        "wrong-password",
        "empty-user-password",
        "no-xref",
        "image-only",
    ],
)
def test_real_pdfs_end_in_their_documented_outcome(tenant, relative, fields, status, code, expect_text):
    response = upload(tenant.client, fixture(relative), **fields)
    assert response.status_code == 201, response.json()  # no broker: the job ran before the answer
    body = response.json()
    assert body["object"] == "pdf2text" and body["id"].startswith("pdf2text-")
    assert body["status"] == status
    detail = tenant.client.get(f"/v1/pdf2text/{body['id']}").json()
    assert detail == body
    if code is None:
        assert body["error"] is None
        assert body["page_count"] == len(body["pages"]) >= 1
        assert body["text"] == "\f".join(page["text"] for page in body["pages"])
        assert set(body["metadata"]) == {"title", "author", "producer", "encrypted"}
        if expect_text:
            assert expect_text in body["text"]
    else:
        assert body["error"]["code"] == code and body["error"]["message"]
        assert "pages" not in body and "text" not in body
    job = Pdf2TextJob.objects.get(pk=body["id"])
    assert job.password == ""  # forgotten once the job ended
    assert job.child_pid is not None


def test_image_only_page_has_a_note(tenant):
    body = upload(tenant.client, fixture("py-pdf-sample-files/019-grayscale-image/grayscale-image.pdf")).json()
    assert body["pages"][0] == {"page": 1, "text": "", "notes": ["no_text_layer"]}


def test_corrupted_real_pdf_is_accepted_and_fails_with_pypdfs_reason(tenant, settings):
    truncated = fixture("pypdf/resources/crazyones.pdf").read_bytes()[:5000]
    body = upload(tenant.client, truncated, name="truncated.pdf").json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "invalid_pdf"
    assert "PdfStreamError" in body["error"]["message"]
    assert len(stored_files(settings.MEDIA_ROOT)) == 1  # the upload itself is kept: pdf_url serves it


def test_unreadable_file_carries_the_reason(tenant):
    body = upload(tenant.client, fixture("pdfminer/simple1.pdf")).json()
    assert body["error"] == {"code": "invalid_pdf", "message": "PdfReadError: startxref not found"}


def test_page_selection_and_layout(tenant):
    path = fixture("py-pdf-sample-files/007-imagemagick-images/imagemagick-images.pdf")  # six pages
    body = upload(tenant.client, path, pages="2-3, 6", layout="true").json()
    assert body["status"] == "succeeded", body
    assert [page["page"] for page in body["pages"]] == [2, 3, 6]
    assert (body["page_count"], body["page_selection"], body["layout"]) == (6, "2-3, 6", True)


def test_leading_junk_before_the_header_is_tolerated(tenant, make_pdf):
    pdf = make_pdf(contents=[text_page("Hello junk")]).read_bytes()
    response = upload(tenant.client, b"\r\n" + b"x" * 500 + b"\n" + pdf)
    assert response.status_code == 201
    assert response.json()["status"] in {"succeeded", "failed"}
    if response.json()["status"] == "failed":
        assert response.json()["error"]["code"] == "invalid_pdf"


# --- Refused uploads: 4xx, and neither a row nor a file -----------------------------------------------------


def test_empty_file(tenant, settings):
    response = upload(tenant.client, b"")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "empty_file"
    assert response.json()["error"]["param"] == "file"
    assert_nothing_stored(settings)


def test_text_file_renamed_pdf(tenant, settings):
    response = upload(tenant.client, b"Just some notes, not a PDF at all.\n" * 50, name="notes.pdf")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_pdf"
    assert_nothing_stored(settings)


def test_header_after_the_first_kilobyte_is_not_a_pdf(tenant, settings, make_pdf):
    pdf = make_pdf(contents=[text_page("late")]).read_bytes()
    response = upload(tenant.client, b" " * 1100 + pdf)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_pdf"
    assert_nothing_stored(settings)


def test_file_over_the_size_limit(tenant, settings):
    path = fixture("pypdf/resources/crazyones.pdf")
    settings.PDF2TEXT_MAX_BYTES = path.stat().st_size - 1
    response = upload(tenant.client, path)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert_nothing_stored(settings)


def test_content_length_alone_can_refuse_a_huge_upload(tenant, settings):
    settings.PDF2TEXT_MAX_BYTES = 10
    response = tenant.client.generic(
        "POST", "/v1/pdf2text", b"%PDF-" + b"0" * (2 * 1024 * 1024), content_type="multipart/form-data; boundary=x"
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert_nothing_stored(settings)


@pytest.mark.parametrize("pages", ["abc", "3-1", "0", "1,,2", "1-"])
def test_bad_page_selection(tenant, settings, make_pdf, pages):
    response = upload(tenant.client, make_pdf(contents=[text_page("one")]), pages=pages)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_page_range"
    assert response.json()["error"]["param"] == "pages"
    assert_nothing_stored(settings)


def test_pages_beyond_the_document(tenant, settings, make_pdf):
    response = upload(tenant.client, make_pdf(contents=[text_page("one"), text_page("two")]), pages="2-5")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_page_range"
    assert "2 page(s)" in response.json()["error"]["message"]
    assert_nothing_stored(settings)


def test_too_many_pages(tenant, settings, make_pdf):
    settings.PDF2TEXT_MAX_PAGES = 2
    response = upload(tenant.client, make_pdf(contents=[text_page(str(n)) for n in range(3)]))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_pages"
    assert_nothing_stored(settings)


def test_missing_file(tenant, settings):
    response = tenant.client.post("/v1/pdf2text", {"pages": "1"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "file"
    assert_nothing_stored(settings)


def test_an_unknown_form_field_is_refused_and_nothing_is_stored(tenant, settings, make_pdf):
    # A misspelt `pages` would otherwise extract every page.
    response = upload(tenant.client, make_pdf(contents=[text_page("x")]), page="1")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["param"], error["code"], error["message"]) == (
        "page",
        "invalid_request",
        "page: page is not a known field.",
    )
    assert_nothing_stored(settings)


def test_needs_an_api_key(anon, settings, make_pdf):
    response = anon.post("/v1/pdf2text", {"file": make_pdf(contents=[text_page("x")]).open("rb")})
    assert response.status_code == 401
    assert_nothing_stored(settings)


# --- Reading jobs: detail, file, list, tenancy ------------------------------------------------------------


def test_pdf_url_streams_the_original_to_its_owner_only(tenant, other_tenant):
    path = fixture("pypdf/resources/crazyones.pdf")
    body = upload(tenant.client, path).json()
    assert body["pdf_url"] == f"http://testserver/v1/pdf2text/{body['id']}/file"
    assert (body["filename"], body["bytes"]) == ("crazyones.pdf", path.stat().st_size)
    response = tenant.client.get(body["pdf_url"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == path.read_bytes()
    for url in (f"/v1/pdf2text/{body['id']}", body["pdf_url"]):
        foreign = other_tenant.client.get(url)
        assert foreign.status_code == 404
        assert foreign.json()["error"]["code"] == "not_found"
    assert other_tenant.client.get("/v1/pdf2text").json()["data"] == []


def test_unknown_id_is_404(tenant):
    for url in ("/v1/pdf2text/pdf2text-nope", "/v1/pdf2text/pdf2text-nope/file"):
        assert tenant.client.get(url).status_code == 404


def test_list_is_cursor_paginated_newest_first(tenant, make_pdf):
    ids = [upload(tenant.client, make_pdf(contents=[text_page(f"doc {n}")])).json()["id"] for n in range(3)]
    first = tenant.client.get("/v1/pdf2text?limit=2").json()
    assert [item["id"] for item in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    assert "pages" not in first["data"][0] and first["data"][0]["status"] == "succeeded"
    rest = tenant.client.get(f"/v1/pdf2text?limit=2&after={first['last_id']}").json()
    assert [item["id"] for item in rest["data"]] == [ids[0]] and rest["has_more"] is False


def test_wait_returns_when_the_time_is_up(tenant, make_pdf):
    job_id = upload(tenant.client, make_pdf(contents=[text_page("x")])).json()["id"]
    Pdf2TextJob.objects.filter(pk=job_id).update(status="queued", finished_at=None)
    started = time.monotonic()
    body = tenant.client.get(f"/v1/pdf2text/{job_id}?wait=0.5").json()
    assert 0.4 < time.monotonic() - started < 3
    assert body["status"] == "queued"
    assert tenant.client.get(f"/v1/pdf2text/{job_id}?wait=-1").status_code == 400


@pytest.mark.django_db(transaction=True)
def test_wait_returns_as_soon_as_the_job_ends(tenant, make_pdf):
    job_id = upload(tenant.client, make_pdf(contents=[text_page("x")])).json()["id"]
    Pdf2TextJob.objects.filter(pk=job_id).update(status="running")

    def finish() -> None:
        try:
            Pdf2TextJob.objects.filter(pk=job_id).update(status="succeeded")
        finally:
            connections.close_all()

    threading.Timer(0.3, finish).start()
    started = time.monotonic()
    body = tenant.client.get(f"/v1/pdf2text/{job_id}?wait=20").json()
    assert body["status"] == "succeeded"
    assert time.monotonic() - started < 5


# --- Workers that die -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sigkill_of_the_extraction_child_fails_the_job(tenant, make_pdf):
    path = make_pdf(contents=[SLOW_PAGE], name="slow.pdf")
    responses: list[Any] = []

    def post() -> None:
        try:
            responses.append(upload(tenant.client, path))
        finally:
            connections.close_all()

    thread = threading.Thread(target=post)
    thread.start()
    pid, deadline = None, time.monotonic() + 20
    while pid is None and time.monotonic() < deadline:
        pid = Pdf2TextJob.objects.filter(status="running").values_list("child_pid", flat=True).first()
        time.sleep(0.05)
    assert pid is not None, "the job never reported its extraction process"
    os.kill(pid, signal.SIGKILL)
    thread.join(30)
    body = responses[0].json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "worker_crashed"
    assert "SIGKILL" in body["error"]["message"]


def _running_since(job_id: str, seconds_ago: float) -> None:
    started = timezone.now() - timedelta(seconds=seconds_ago)
    Pdf2TextJob.objects.filter(pk=job_id).update(
        status="running", started_at=started, heartbeat_at=started, finished_at=None, error_code="", error_message=""
    )


def test_stale_running_job_is_failed_by_the_sweep(tenant, settings, make_pdf):
    stale, fresh = (upload(tenant.client, make_pdf(contents=[text_page("x")])).json()["id"] for _ in range(2))
    limit = settings.PDF2TEXT_TIMEOUT_S + settings.TEXT_STALE_MARGIN_S
    _running_since(stale, limit + 5)
    _running_since(fresh, limit - 30)
    assert fail_stale_jobs_task.delay().get() == 1
    body = tenant.client.get(f"/v1/pdf2text/{stale}").json()
    assert body["status"] == "failed" and body["error"]["code"] == "worker_lost"
    assert "stopped before it finished" in body["error"]["message"]
    assert tenant.client.get(f"/v1/pdf2text/{fresh}").json()["status"] == "running"


def test_reading_a_stale_job_leaves_it_to_the_sweep(tenant, settings, make_pdf):
    job_id = upload(tenant.client, make_pdf(contents=[text_page("x")])).json()["id"]
    _running_since(job_id, settings.PDF2TEXT_TIMEOUT_S + settings.TEXT_STALE_MARGIN_S + 1)
    assert tenant.client.get(f"/v1/pdf2text/{job_id}").json()["status"] == "running"
    assert tenant.client.get("/v1/pdf2text").json()["data"][0]["status"] == "running"
    assert fail_stale_jobs_task.delay().get() == 1
    body = tenant.client.get(f"/v1/pdf2text/{job_id}").json()
    assert (body["status"], body["error"]["code"]) == ("failed", "worker_lost")


def test_a_repeated_delivery_does_nothing(tenant, make_pdf):
    from apps.text.tasks import pdf2text_task

    body = upload(tenant.client, make_pdf(contents=[text_page("once")])).json()
    finished_at = Pdf2TextJob.objects.get(pk=body["id"]).finished_at
    pdf2text_task.delay(body["id"])
    assert Pdf2TextJob.objects.get(pk=body["id"]).finished_at == finished_at


def test_schema_documents_the_endpoints(anon):
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert {
        "/v1/pdf2text",
        "/v1/pdf2text/{job_id}",
        "/v1/pdf2text/{job_id}/file",
        "/v1/summarization",
        "/v1/summarization/{job_id}",
        "/v1/summarization/{job_id}/file",
    } <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/v1/pdf2text"]["post"]["requestBody"]["content"]


# --- Long documents: pages shared out between extraction processes -----------------------------------------


def test_long_document_is_extracted_in_parallel_parts(tenant, settings, make_pdf):
    pdf = make_pdf(contents=[text_page(f"Page number {n}") for n in range(1, 24)])
    settings.PDF2TEXT_MAX_CHILDREN = 1
    single = upload(tenant.client, pdf).json()
    settings.PDF2TEXT_MAX_CHILDREN, settings.PDF2TEXT_PAGES_PER_CHILD = 3, 5
    parallel = upload(tenant.client, pdf).json()
    assert parallel["status"] == "succeeded"
    assert parallel["pages"] == single["pages"] and parallel["text"] == single["text"]
    assert [page["page"] for page in parallel["pages"]] == list(range(1, 24))
    assert "Page number 17" in parallel["pages"][16]["text"]
    selected = upload(tenant.client, pdf, pages="2-4,9-20,23").json()
    assert [page["page"] for page in selected["pages"]] == [2, 3, 4, *range(9, 21), 23]


def test_page_parts(settings):
    from apps.text.services.pdf2text import page_parts

    settings.PDF2TEXT_MAX_CHILDREN, settings.PDF2TEXT_PAGES_PER_CHILD = 4, 10
    assert page_parts(pages=None, page_count=19) == [None]
    assert page_parts(pages=None, page_count=20) == ["1-10", "11-20"]
    assert page_parts(pages=None, page_count=100) == ["1-25", "26-50", "51-75", "76-100"]
    assert page_parts(pages="1-5,30-44", page_count=50) == ["1-5,30-34", "35-44"]
    assert page_parts(pages=None, page_count=None) == [None]
    assert page_parts(pages="90-99", page_count=50) == ["90-99"]  # the child reports the bad range


def test_a_failed_part_fails_the_whole_job(monkeypatch, settings):
    from apps.text.services import pdf2text
    from workers.pdf import ErrorCode, PageText, PdfResult, Status

    settings.PDF2TEXT_MAX_CHILDREN, settings.PDF2TEXT_PAGES_PER_CHILD = 2, 10

    def fake(*, pages: str, **kwargs: Any) -> PdfResult:
        if pages == "11-20":
            return PdfResult.failure(ErrorCode.WORKER_CRASHED, "killed by SIGKILL")
        return PdfResult(status=Status.SUCCEEDED, page_count=20, pages=[PageText(page=1, text="x")])

    monkeypatch.setattr(pdf2text, "pdf_extract_text", fake)
    result = pdf2text._extract_in_parts(
        path="x.pdf", password=None, pages=None, layout=False, page_count=20, on_start=lambda pid: None
    )
    assert (result.status, result.error_code) == (Status.FAILED, ErrorCode.WORKER_CRASHED)
