"""Uploading fine-tuning data: validated while streamed, stored only when every record is usable."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from apps.finetune.models import TrainingFile

from .api_helpers import alpaca_jsonl

pytestmark = pytest.mark.django_db


def _upload(client, content: bytes | io.BytesIO, name: str = "data.jsonl", **fields):
    upload = content if isinstance(content, io.BytesIO) else io.BytesIO(content)
    upload.name = name
    return client.post("/v1/files", {"file": upload, "purpose": "fine-tune", **fields}, format="multipart")


def _stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "finetune"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_upload_list_retrieve_content_delete(
    tenant, other_tenant, instruct_dir, settings, django_capture_on_commit_callbacks
):
    raw = (instruct_dir / "identity.json").read_bytes()
    created = _upload(tenant.client, raw, "identity.json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["object"] == "file" and body["purpose"] == "fine-tune" and body["bytes"] == len(raw)
    assert body["format"] == "alpaca" and body["records"] == 91

    assert [f["id"] for f in tenant.client.get("/v1/files").json()["data"]] == [body["id"]]
    assert tenant.client.get(f"/v1/files/{body['id']}").json()["filename"] == "identity.json"
    content = tenant.client.get(f"/v1/files/{body['id']}/content")
    assert b"".join(content.streaming_content) == raw

    for path in ("", "/content"):
        assert other_tenant.client.get(f"/v1/files/{body['id']}{path}").status_code == 404
    assert other_tenant.client.delete(f"/v1/files/{body['id']}").status_code == 404
    assert _stored_files(settings)
    with django_capture_on_commit_callbacks(execute=True):
        assert tenant.client.delete(f"/v1/files/{body['id']}").json()["deleted"] is True
    assert not TrainingFile.objects.exists() and not _stored_files(settings)


@pytest.mark.parametrize(
    ("content", "code", "lines"),
    [
        (b"", "empty_file", []),
        (b"\x00\x01\x02\xff\xfe binary \x00" * 20, "invalid_file", []),
        ('{"instruction": "你好", "output": "好"}\n'.encode("gbk"), "invalid_encoding", []),
        (
            b'{"instruction": "q", "output": "a"}\n'
            b'{"instruction": "q2", "output": \n{"instruction": 5, "output": "a"}\n',
            "invalid_records",
            [2, 3],
        ),
        (b'{"foo": 1}\n{"bar": 2}\n', "unknown_format", [1, 2]),
        (
            b'{"instruction": "q", "output": "a"}\n{"messages": [{"role": "user", "content": "x"}]}\n',
            "invalid_records",
            [2],
        ),
    ],
)
def test_bad_files_are_rejected_with_line_numbers_and_nothing_is_stored(tenant, settings, content, code, lines):
    response = _upload(tenant.client, content)
    assert 400 <= response.status_code < 500, response.json()
    error = response.json()["error"]
    assert error["code"] == code and error["param"] == "file"
    assert [e["line"] for e in error.get("errors", [])] == lines
    assert all(e["message"] for e in error.get("errors", []))
    assert not TrainingFile.objects.exists() and not _stored_files(settings)


def test_over_the_size_limit_is_413(tenant, settings):
    settings.FINETUNE_MAX_UPLOAD_BYTES = 100
    response = _upload(tenant.client, alpaca_jsonl([("q" * 50, "a" * 50), ("q2", "a2")]))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert not TrainingFile.objects.exists()


@pytest.mark.parametrize("fields", [{"purpose": "assistants"}, {"file": "not-a-file"}])
def test_bad_form_fields(tenant, fields):
    if "file" in fields:
        response = tenant.client.post("/v1/files", {"purpose": "fine-tune", **fields}, format="multipart")
    else:
        response = _upload(tenant.client, alpaca_jsonl([("q", "a")]), **fields)
    assert response.status_code == 400
    assert response.json()["error"]["param"] in {"purpose", "file"}


def test_purpose_is_required_and_other_fields_are_refused_by_name(tenant, settings):
    def upload(**fields):
        return tenant.client.post("/v1/files", {"file": alpaca_jsonl([("q", "a")]), **fields}, format="multipart")

    for fields, param, message in [
        ({}, "purpose", "This field is required."),
        ({"purpose": "fine-tune", "purpouse": "batch"}, "purpouse", "purpouse: purpouse is not a known field."),
    ]:
        response = upload(**fields)
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert (error["param"], error["code"]) == (param, "invalid_request") and message in error["message"]
    assert not TrainingFile.objects.exists() and _stored_files(settings) == []
    # OpenAI's expiry, as the SDK sends it: files are kept until deleted.
    kept = upload(purpose="fine-tune", **{"expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"})
    assert kept.status_code == 201, kept.content


def test_legacy_upload_needs_no_purpose(tenant):
    response = tenant.client.post(
        "/bot-service/ft/upload_train_data", {"file": alpaca_jsonl([("q", "a")])}, format="multipart"
    )
    assert response.status_code == 200 and response.json()["code"] == 200, response.content
    assert TrainingFile.objects.get().purpose == "fine-tune"


def test_all_three_formats_are_accepted(tenant, instruct_dir):
    sharegpt = (instruct_dir / "glaive_toolcall_zh_demo.json").read_bytes()
    openai_chat = b'{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
    for name, content, expected in [
        ("b.jsonl", openai_chat, "openai"),
        ("c.csv", b"instruction,input,output\nq,,a\nq2,x,a2\n", "alpaca"),
    ]:
        response = _upload(tenant.client, content, name)
        assert response.status_code == 201, (name, response.json())
        assert response.json()["format"] == expected
    # This real file has 2 malformed conversations of 300: rejected, unless asked to skip them.
    strict = _upload(tenant.client, sharegpt, "a.json")
    assert strict.status_code == 400 and strict.json()["error"]["error_count"] == 2
    lenient = _upload(tenant.client, sharegpt, "a.json", skip_invalid_records="true")
    assert lenient.status_code == 201 and lenient.json()["format"] == "sharegpt"
    assert lenient.json()["status_details"] == "2 invalid record(s) will be skipped"
