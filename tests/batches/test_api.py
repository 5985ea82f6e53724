"""The Batch API's requests and refusals: uploads, creation, listing, cancel and tenancy, through the HTTP API."""

from __future__ import annotations

import pytest

from apps.batches.models import Batch
from apps.finetune.models import TrainingFile

from .conftest import chat_line, jsonl, upload

pytestmark = pytest.mark.django_db


def _error(response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def test_upload_counts_lines_and_keeps_a_file_with_some_bad_ones(tenant):
    content = jsonl([chat_line("a"), "{broken", chat_line("b"), "", {"custom_id": "c", "method": "POST"}])
    response = upload(tenant.client, content)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["object"] == "file" and body["purpose"] == "batch" and body["bytes"] == len(content)
    assert body["records"] == 4  # blank lines are not requests
    assert body["status_details"] == "2 invalid record(s) will be reported in the batch's error file"
    stored = TrainingFile.objects.get(pk=body["id"])
    assert (stored.total, stored.valid_count) == (4, 2)
    assert [e["line"] for e in stored.validation["errors"]] == [2, 5]
    content_response = tenant.client.get(f"/v1/files/{body['id']}/content")
    assert b"".join(content_response.streaming_content) == content


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"", 400, "empty_file"),
        (b"\n  \n", 400, "empty_file"),
        ('{"custom_id": "é"}\n'.encode("latin-1"), 400, "invalid_encoding"),
        (b"\x00\x01\x02\xff\xfe" * 50, 400, "invalid_encoding"),
        (b"{not json}\n[1, 2]\n", 400, "no_valid_lines"),
        (jsonl([{**chat_line("a"), "url": "/v1/images/generations"}]), 400, "no_valid_lines"),
        (jsonl([chat_line(str(i)) for i in range(4)]), 400, "too_many_lines"),
        (jsonl([chat_line("a", content="x" * 900)]), 413, "file_too_large"),
    ],
)
def test_unusable_uploads_are_refused_and_nothing_is_stored(tenant, settings, content, status, code):
    settings.BATCH_MAX_LINES = 3
    settings.BATCH_MAX_UPLOAD_BYTES = 800
    _error(upload(tenant.client, content), status, code, "file")
    assert not TrainingFile.objects.exists()


def test_other_purposes_are_still_refused(tenant):
    _error(upload(tenant.client, jsonl([chat_line("a")]), purpose="assistants"), 400, "invalid_purpose", "purpose")


@pytest.fixture
def batch_file(tenant) -> str:
    return upload(tenant.client, jsonl([chat_line("a"), chat_line("b")])).json()["id"]


def _create(client, **fields):
    return client.post(
        "/v1/batches", {"endpoint": "/v1/chat/completions", "completion_window": "24h", **fields}, format="json"
    )


def test_create_retrieve_list(tenant, other_tenant, batch_file):
    created = _create(tenant.client, input_file_id=batch_file, metadata={"k": "v"})
    assert created.status_code == 200, created.json()
    body = created.json()
    assert body["object"] == "batch" and body["status"] == "validating" and body["id"].startswith("batch_")
    assert body["input_file_id"] == batch_file and body["endpoint"] == "/v1/chat/completions"
    assert body["expires_at"] - body["created_at"] == 24 * 3600
    assert body["request_counts"] == {"total": 2, "completed": 0, "failed": 0}
    assert body["output_file_id"] is None and body["error_file_id"] is None and body["errors"] is None
    for key in (
        "in_progress_at",
        "finalizing_at",
        "completed_at",
        "failed_at",
        "expired_at",
        "cancelling_at",
        "cancelled_at",
    ):
        assert body[key] is None
    assert Batch.objects.get(pk=body["id"]).api_key_id == tenant.api_key.pk

    assert tenant.client.get(f"/v1/batches/{body['id']}").json() == body
    assert [b["id"] for b in tenant.client.get("/v1/batches").json()["data"]] == [body["id"]]
    assert other_tenant.client.get("/v1/batches").json()["data"] == []
    _error(other_tenant.client.get(f"/v1/batches/{body['id']}"), 404, "not_found")
    _error(other_tenant.client.post(f"/v1/batches/{body['id']}/cancel"), 404, "not_found")
    _error(tenant.client.get("/v1/batches/batch_nope"), 404, "not_found")


def test_every_field_openai_documents_is_accepted_and_others_are_refused(tenant, batch_file):
    expiry = {"anchor": "created_at", "seconds": 7 * 24 * 3600}
    created = _create(tenant.client, input_file_id=batch_file, metadata={"k": "v"}, output_expires_after=expiry)
    assert created.status_code == 200, created.json()
    assert created.json()["metadata"] == {"k": "v"}
    _error(
        _create(tenant.client, input_file_id=batch_file, output_expires_after={"seconds": 60}),
        400,
        None,
        "output_expires_after.anchor",
    )
    _error(_create(tenant.client, input_file_id=batch_file, window="24h"), 400, "invalid_request", "window")
    assert Batch.objects.count() == 1


def test_list_pages_newest_first(tenant, batch_file):
    ids = [_create(tenant.client, input_file_id=batch_file).json()["id"] for _ in range(3)]
    first = tenant.client.get("/v1/batches?limit=2").json()
    assert [b["id"] for b in first["data"]] == ids[:0:-1] and first["has_more"] is True
    assert (first["first_id"], first["last_id"]) == (ids[2], ids[1])
    rest = tenant.client.get(f"/v1/batches?limit=2&after={first['last_id']}").json()
    assert [b["id"] for b in rest["data"]] == [ids[0]] and rest["has_more"] is False
    _error(tenant.client.get("/v1/batches?after=batch_unknown"), 400, "invalid_cursor", "after")
    _error(tenant.client.get("/v1/batches?limit=1000"), 400, None, "limit")


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"endpoint": "/v1/responses"}, "endpoint"),
        ({"endpoint": None}, "endpoint"),
        ({"completion_window": "48h"}, "completion_window"),
        ({"metadata": ["a"]}, "metadata"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"input_file_id": None}, "input_file_id"),
    ],
)
def test_bad_create_requests_are_400s(tenant, batch_file, fields, param):
    _error(_create(tenant.client, **{"input_file_id": batch_file, **fields}), 400, None, param)
    assert not Batch.objects.exists()


def test_malformed_json_body(tenant):
    response = tenant.client.post("/v1/batches", data="{nope", content_type="application/json")
    _error(response, 400, "invalid_json")


def test_input_files_that_cannot_make_a_batch(tenant, other_tenant, batch_file):
    _error(_create(tenant.client, input_file_id="file-unknown"), 404, "not_found", "input_file_id")
    _error(_create(other_tenant.client, input_file_id=batch_file), 404, "not_found", "input_file_id")

    finetune = upload(tenant.client, b'{"instruction": "q", "output": "a"}\n', purpose="fine-tune")
    assert finetune.status_code == 201, finetune.json()
    _error(_create(tenant.client, input_file_id=finetune.json()["id"]), 400, "invalid_input_file", "input_file_id")

    duplicated = upload(tenant.client, jsonl([chat_line("same"), chat_line("other"), chat_line("same")])).json()
    error = _error(_create(tenant.client, input_file_id=duplicated["id"]), 400, "duplicate_custom_id", "input_file_id")
    assert "same" in error["message"]
    assert not Batch.objects.exists()


def test_cancel_semantics(tenant, batch_file):
    batch_id = _create(tenant.client, input_file_id=batch_file).json()["id"]
    cancelled = tenant.client.post(f"/v1/batches/{batch_id}/cancel").json()
    # Not picked up by a runner yet: cancelled at once.
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"] and cancelled["cancelling_at"]
    _error(tenant.client.post(f"/v1/batches/{batch_id}/cancel"), 409, "batch_not_cancellable")

    running_id = _create(tenant.client, input_file_id=batch_file).json()["id"]
    Batch.objects.filter(pk=running_id).update(status="in_progress")
    assert tenant.client.post(f"/v1/batches/{running_id}/cancel").json()["status"] == "cancelling"
    assert tenant.client.post(f"/v1/batches/{running_id}/cancel").json()["status"] == "cancelling"
    for status in ("finalizing", "completed", "failed", "expired"):
        Batch.objects.filter(pk=running_id).update(status=status)
        _error(tenant.client.post(f"/v1/batches/{running_id}/cancel"), 409, "batch_not_cancellable")


def test_requests_need_a_key(anon):
    assert anon.get("/v1/batches").status_code == 401
