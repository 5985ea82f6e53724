"""Custom plugins through the HTTP API: tenancy, uploads (good, bad, mixed), deletion, legacy routes, a worker."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.dispatch import wait_for_embedded_tasks
from apps.plugins import indexes
from apps.plugins.models import Document, Plugin
from tests.conftest import requires_redis

BASE = "/v1/plugin/custom/plugins"
MD = b"# Tide pools\n\nThe purple sea urchin grazes kelp along the rocky shore at low tide.\n"


def _file(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def _create(tenant, name: str = "Notes", **extra) -> dict:
    response = tenant.client.post(BASE, {"name": name, **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _upload(tenant, plugin_id: str, *files: SimpleUploadedFile):
    return tenant.client.post(f"{BASE}/{plugin_id}/files", {"file": list(files)}, format="multipart")


def _builtin() -> Plugin:
    return Plugin.objects.create(owner=None, builtin=True, slug="law", name="Law", kind="law")


def test_create_list_detail(tenant, other_tenant):
    created = _create(tenant, "My Notes", description="d", kind="wiki")
    assert created["plugin_id"].startswith("plg-") and created["plugin_name"] == "My Notes"
    assert created["available"] is True and isinstance(created["created_at"], int)
    _create(tenant, "Second")
    page = tenant.client.get(f"{BASE}?limit=1").json()
    assert page["object"] == "list" and page["has_more"] is True and len(page["data"]) == 1
    rest = tenant.client.get(f"{BASE}?after={page['last_id']}").json()
    assert [p["plugin_name"] for p in rest["data"]] == ["My Notes"] and rest["has_more"] is False
    detail = tenant.client.get(f"{BASE}/{created['plugin_id']}").json()
    assert detail["kind"] == "wiki" and detail["document_count"] == 0 and detail["ingest"] is None
    assert other_tenant.client.get(BASE).json()["data"] == []
    duplicate = tenant.client.post(BASE, {"name": "My Notes"}, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "plugin_exists"
    bad_kind = tenant.client.post(BASE, {"name": "x", "kind": "poetry"}, format="json")
    assert bad_kind.status_code == 400 and bad_kind.json()["error"]["param"] == "kind"


@pytest.mark.parametrize("name", ["law", "Wiki", " FINANCE "])
def test_a_plugin_may_not_take_a_builtins_name(tenant, name):
    # The caller's own plugins come first where a slug names a plugin: it would hide the built-in from them.
    refused = tenant.client.post(BASE, {"name": name}, format="json")
    assert refused.status_code == 400, refused.json()
    assert (refused.json()["error"]["code"], refused.json()["error"]["param"]) == ("plugin_name_reserved", "name")
    assert tenant.client.get(BASE).json()["data"] == []
    assert _create(tenant, f"{name.strip()} notes")["plugin_name"] == f"{name.strip()} notes"


def test_tenancy(tenant, other_tenant, anon):
    plugin_id = _create(tenant)["plugin_id"]
    builtin = _builtin()
    document = Document.objects.create(plugin_id=plugin_id, external_id="a.md", text="x")
    for method, path in [
        ("get", f"{BASE}/{plugin_id}"),
        ("delete", f"{BASE}/{plugin_id}"),
        ("get", f"{BASE}/{plugin_id}/files"),
        ("delete", f"{BASE}/{plugin_id}/files/{document.id}"),
        ("get", f"{BASE}/{plugin_id}/files/{document.id}"),
    ]:
        response = getattr(other_tenant.client, method)(path)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    upload = _upload(other_tenant, plugin_id, _file("b.md", MD))
    assert upload.status_code == 404
    search = other_tenant.client.post("/v1/plugin/search", {"plugin": plugin_id, "query": "x"}, format="json")
    assert search.status_code == 404 and search.json()["error"]["param"] == "plugin"
    # Built-ins: visible to everyone, deletable and uploadable by no one through the API.
    for client in (tenant.client, other_tenant.client):
        assert client.post("/v1/plugin/search", {"plugin": "law", "query": "合同"}, format="json").status_code == 200
        assert "law" in [p["slug"] for p in client.get("/v1/plugin/plugins").json()["data"]]
        assert client.delete(f"{BASE}/{builtin.id}").status_code == 404
        assert client.delete(f"{BASE}/law").status_code == 404
    assert anon.get(BASE).status_code == 401
    assert Plugin.objects.filter(pk=builtin.pk).exists() and Document.objects.filter(pk=document.pk).exists()


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("empty.md", b"", 400, "empty_file"),
        ("blank.txt", b"  \n\n ", 400, "empty_file"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 400, "unsupported_file_type"),
        ("latin1.md", "caf\xe9 \x01\x02".encode("latin-1"), 400, "invalid_text_encoding"),
        ("image.png", b"not really", 400, "unsupported_file_type"),
        ("noext", b"text", 400, "unsupported_file_type"),
        ("fake.pdf", b"hello, not a pdf", 400, "invalid_pdf"),
        ("bad.jsonl", b'{"id": "1", "text": "ok"}\n{broken\n', 400, "invalid_jsonl"),
        ("notext.jsonl", b'{"id": "1", "title": "t"}\n', 400, "invalid_jsonl"),
        ("bad.docx", b"PK\x03\x04 nope", 400, "invalid_docx"),
        ("big.md", b"x" * 2049, 413, "file_too_large"),
    ],
)
def test_bad_uploads_store_nothing(tenant, settings, name, data, status, code):
    settings.PLUGINS_MAX_UPLOAD_BYTES = 2048
    plugin_id = _create(tenant)["plugin_id"]
    response = _upload(tenant, plugin_id, _file("good.md", MD), _file(name, data))
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["param"] == "file[1]"
    assert not Document.objects.exists()
    assert not indexes.index_dir(plugin_id=plugin_id).exists()
    assert Plugin.objects.get(pk=plugin_id).index_version == 0


def test_no_file_is_400(tenant):
    plugin_id = _create(tenant)["plugin_id"]
    response = tenant.client.post(f"{BASE}/{plugin_id}/files", {}, format="multipart")
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"


def test_unknown_fields_are_refused_by_name(tenant):
    def refused(response, param: str) -> None:
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert (error["param"], error["code"]) == (param, "invalid_request")
        assert error["message"] == f"{param}: {param} is not a known field."

    refused(tenant.client.post(BASE, {"name": "Notes", "descripton": "typo"}, format="json"), "descripton")
    assert not Plugin.objects.filter(owner=tenant.user).exists()
    plugin_id = _create(tenant)["plugin_id"]
    url = f"{BASE}/{plugin_id}"
    refused(
        tenant.client.patch(url, {"embedding_model": "all-minilm-l6-v2", "rebuild": True}, format="json"), "rebuild"
    )
    upload = {"file": [_file("tide.md", MD)], "kind": "law"}
    refused(tenant.client.post(f"{url}/files", upload, format="multipart"), "kind")
    assert not Document.objects.exists()


def test_batch_with_a_broken_pdf_ingests_the_rest(transactional_db, tenant, plugin_indexes):
    plugin_id = _create(tenant)["plugin_id"]
    corrupt = b"%PDF-1.4\n" + b"\x00garbage" * 50
    jsonl = (
        b'{"id": "n-1", "title": "Octopus", "text": "The octopus has three hearts.", "url": "https://x/1"}\n'
        b'{"id": "n-2", "title": "Heron", "text": "Herons stalk fish in the shallows."}\n'
    )
    response = _upload(
        tenant, plugin_id, _file("tide.md", MD), _file("broken.pdf", corrupt), _file("animals.jsonl", jsonl)
    )
    assert response.status_code == 202, response.content
    listed = response.json()["data"]
    assert {f["file_name"] for f in listed} == {"tide.md", "broken.pdf", "animals.jsonl"}
    assert {f["status"] for f in listed} == {"queued"}
    wait_for_embedded_tasks()
    files = {f["external_id"]: f for f in tenant.client.get(f"{BASE}/{plugin_id}/files").json()["data"]}
    assert files["broken.pdf"]["status"] == "failed" and "PDF" in files["broken.pdf"]["error"]
    for external_id in ("tide.md", "n-1", "n-2"):
        assert files[external_id]["status"] == "processed" and files[external_id]["chunk_count"] >= 1
        assert files[external_id]["error"] is None
    detail = tenant.client.get(f"{BASE}/{plugin_id}").json()
    assert detail["status"] == "ready" and detail["document_count"] == 4
    assert detail["ingest"]["status"] == "succeeded"
    assert (detail["ingest"]["done"], detail["ingest"]["total"], detail["ingest"]["failed"]) == (4, 4, 1)
    hits = tenant.client.post(
        "/v1/plugin/search", {"plugin": plugin_id, "query": "octopus hearts"}, format="json"
    ).json()["data"]
    assert hits[0]["doc_id"] == "n-1" and hits[0]["url"] == "https://x/1"


def test_delete_file_and_plugin(transactional_db, tenant, plugin_indexes):
    plugin = _create(tenant)
    plugin_id = plugin["plugin_id"]
    uploaded = _upload(tenant, plugin_id, _file("tide.md", MD), _file("other.txt", b"Granite cliffs erode slowly."))
    wait_for_embedded_tasks()
    file_id = next(f["file_id"] for f in uploaded.json()["data"] if f["file_name"] == "tide.md")
    assert tenant.client.delete(f"{BASE}/{plugin_id}/files/{file_id}").json() == {
        "file_id": file_id,
        "deleted": True,
    }
    hits = tenant.client.post(
        "/v1/plugin/search", {"plugin": plugin_id, "query": "purple sea urchin kelp"}, format="json"
    ).json()["data"]
    assert "tide.md" not in [h["doc_id"] for h in hits]
    directory = indexes.index_dir(plugin_id=plugin_id)
    assert directory.exists()
    assert tenant.client.delete(f"{BASE}/{plugin_id}").status_code == 200
    assert not directory.exists() and not Plugin.objects.filter(pk=plugin_id).exists()
    assert not Document.objects.exists()
    assert tenant.client.get(f"{BASE}/{plugin_id}").status_code == 404


def test_legacy_routes(transactional_db, tenant, other_tenant, plugin_indexes):
    created = tenant.client.post("/bot-service/plugin/custom/create", {"name": "Legacy"}, format="json").json()
    assert created["code"] == 200
    plugin_id = created["data"]["plugin_id"]
    listed = tenant.client.post("/bot-service/plugin/custom/list", {}, format="json").json()
    assert [p["plugin_id"] for p in listed["data"]["list"]] == [plugin_id]
    upload = tenant.client.post(
        "/bot-service/plugin/custom/upload",
        {"pluginId": plugin_id, "file": [_file("t.md", MD)]},
        format="multipart",
    )
    assert upload.status_code == 200 and upload.json()["data"]["files"][0]["status"] == "queued"
    wait_for_embedded_tasks()
    foreign = other_tenant.client.post("/bot-service/plugin/custom/delete", {"pluginId": plugin_id}, format="json")
    assert foreign.status_code == 404 and foreign.json()["code"] == 404
    assert foreign.json()["data"]["error"]["code"] == "not_found"
    deleted = tenant.client.post("/bot-service/plugin/custom/delete", {"pluginId": plugin_id}, format="json")
    assert deleted.json()["code"] == 200 and not Plugin.objects.exists()


@requires_redis
@pytest.mark.redis
def test_ingestion_on_a_real_worker(celery_worker, tenant, plugin_indexes, crazyones_pdf):
    plugin_id = _create(tenant)["plugin_id"]
    response = _upload(tenant, plugin_id, _file("tide.md", MD), _file("crazy.pdf", crazyones_pdf))
    assert response.status_code == 202
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        statuses = set(Document.objects.filter(plugin_id=plugin_id).values_list("status", flat=True))
        if statuses <= {"processed", "failed"}:
            break
        time.sleep(0.3)
    assert statuses == {"processed"}
    hits = tenant.client.post(
        "/v1/plugin/search", {"plugin": plugin_id, "query": "misfits rebels troublemakers"}, format="json"
    ).json()["data"]
    assert hits[0]["doc_id"] == "crazy.pdf"


def test_admin_pages_and_test_query(admin_client, tmp_path, plugin_indexes):
    from apps.plugins.services import documents

    plugin = Plugin.objects.create(owner=None, builtin=True, slug="wiki", name="Wiki", kind="wiki")
    (tmp_path / "tide.md").write_bytes(MD)
    documents.documents_import(plugin=plugin, path=tmp_path)
    changelist = admin_client.get("/admin/plugins/plugin/")
    assert changelist.status_code == 200 and b"succeeded 1/1" in changelist.content
    change = admin_client.get(f"/admin/plugins/plugin/{plugin.pk}/change/")
    assert change.status_code == 200 and b"tide.md" in change.content and b"test-query" in change.content
    page = admin_client.get(f"/admin/plugins/plugin/{plugin.pk}/test-query/", {"q": "purple urchin", "top_k": "3"})
    assert page.status_code == 200 and b"tide.md" in page.content and b"grazes kelp" in page.content
    document = Document.objects.get()
    assert admin_client.get(f"/admin/plugins/document/{document.pk}/change/").status_code == 200
    response = admin_client.post("/admin/plugins/plugin/", {"action": "reindex", "_selected_action": [plugin.pk]})
    assert response.status_code == 302
