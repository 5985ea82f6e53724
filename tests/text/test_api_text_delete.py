"""Deleting pdf2text and summarization jobs through the API: a finished job goes with its uploaded file, once the
deletion has committed; another tenant's, an unknown and an unfinished job stay, file and all.

``django_capture_on_commit_callbacks(execute=True)`` stands for the commit at the end of a request: the job runs
(in-process, no broker) when its creation commits, and its file is removed when its deletion commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.db.models import QuerySet

from apps.text.models import Pdf2TextJob, SummarizationJob, TextJob
from tests.text.conftest import build_pdf, stored_files, text_page

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Kind:
    url: str
    object: str
    model: type[TextJob]
    file_url: str  # the field of a job that links its uploaded file
    body: Callable[[], dict[str, Any]]  # a multipart create request with its upload


KINDS = {
    "pdf2text": Kind(
        url="/v1/pdf2text",
        object="pdf2text",
        model=Pdf2TextJob,
        file_url="pdf_url",
        body=lambda: {
            "file": SimpleUploadedFile(
                "doc.pdf", build_pdf(contents=[text_page("Tigers swim well.")]), content_type="application/pdf"
            )
        },
    ),
    "summarization": Kind(
        url="/v1/summarization",
        object="summarization",
        model=SummarizationJob,
        file_url="file_url",
        body=lambda: {
            "file": SimpleUploadedFile("note.md", b"# Notes\n\nTigers swim well.", content_type="text/markdown"),
            "model": "tiny-summarizer",
        },
    ),
}


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> Kind:
    if request.param == "summarization":
        request.getfixturevalue("small_model")
    return KINDS[request.param]


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def job(tenant: Any, kind: Kind, commit: Callable[[], Any], settings: Any) -> dict[str, Any]:
    """One of ``tenant``'s jobs of ``kind``, finished, with its upload stored."""
    with commit():
        response = tenant.client.post(kind.url, kind.body(), format="multipart")
    assert response.status_code == 202, response.json()  # queued: it runs once its creation commits
    body = tenant.client.get(f"{kind.url}/{response.json()['id']}").json()
    assert body["status"] in ("succeeded", "failed"), body
    assert len(stored_files(settings.MEDIA_ROOT)) == 1
    return body


def stored_name(kind: Kind, job: dict[str, Any]) -> str:
    return kind.model.objects.get(pk=job["id"]).file.name


def assert_kept(kind: Kind, job: dict[str, Any], tenant: Any, name: str) -> None:
    assert tenant.client.get(f"{kind.url}/{job['id']}").status_code == 200
    assert tenant.client.get(job[kind.file_url]).status_code == 200
    assert default_storage.exists(name)


def test_a_finished_job_is_deleted_with_its_file_once_that_commits(tenant, kind, job, commit, settings):
    name = stored_name(kind, job)
    with commit():
        response = tenant.client.delete(f"{kind.url}/{job['id']}")
        assert default_storage.exists(name)  # nothing is removed before the deletion commits
    assert response.status_code == 200, response.json()
    assert response.json() == {"id": job["id"], "object": kind.object, "deleted": True}
    assert not default_storage.exists(name) and stored_files(settings.MEDIA_ROOT) == []
    assert not kind.model.objects.filter(pk=job["id"]).exists()
    for url in (f"{kind.url}/{job['id']}", job[kind.file_url]):
        gone = tenant.client.get(url)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert tenant.client.get(kind.url).json()["data"] == []
    again = tenant.client.delete(f"{kind.url}/{job['id']}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


def test_another_tenants_job_is_404_and_kept(tenant, other_tenant, kind, job, commit):
    with commit():
        response = other_tenant.client.delete(f"{kind.url}/{job['id']}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert_kept(kind, job, tenant, stored_name(kind, job))


def test_unknown_id_is_404(tenant, kind):
    response = tenant.client.delete(f"{kind.url}/{kind.object}-nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("status", ["queued", "running"])
def test_an_unfinished_job_is_409_and_kept(tenant, kind, job, commit, status):
    kind.model.objects.filter(pk=job["id"]).update(status=status, finished_at=None)
    with commit():
        response = tenant.client.delete(f"{kind.url}/{job['id']}")
    assert response.status_code == 409, response.json()
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("job_not_finished", "conflict_error")
    assert "wait until it finishes" in error["message"]
    assert tenant.client.get(f"{kind.url}/{job['id']}").json()["status"] == status
    assert_kept(kind, job, tenant, stored_name(kind, job))


def test_a_failed_deletion_leaves_everything_in_place(tenant, kind, job, commit, monkeypatch):
    def unreachable(self: QuerySet[Any]) -> tuple[int, dict[str, int]]:
        raise OperationalError("the database went away")

    name = stored_name(kind, job)
    with monkeypatch.context() as patched:
        patched.setattr(QuerySet, "delete", unreachable)
        with commit():
            response = tenant.client.delete(f"{kind.url}/{job['id']}")
    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
    assert_kept(kind, job, tenant, name)


def test_a_file_the_storage_fails_to_delete_is_logged_not_an_error(tenant, kind, job, commit, monkeypatch, caplog):
    def refuse(name: str) -> None:
        raise OSError("read-only file system")

    name = stored_name(kind, job)
    monkeypatch.setattr(default_storage, "delete", refuse)
    with caplog.at_level(logging.WARNING, logger="apps.core.storage"), commit():
        response = tenant.client.delete(f"{kind.url}/{job['id']}")
    assert response.status_code == 200 and response.json()["deleted"] is True
    assert not kind.model.objects.filter(pk=job["id"]).exists()
    assert [record.getMessage() for record in caplog.records if record.name == "apps.core.storage"] == [
        f"could not delete the stored file {name}"
    ]
