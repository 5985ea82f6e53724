"""Plugin indexes with S3 storage (a moto server, see conftest), two hosts simulated in one process by switching
MEDIA_ROOT and STORAGE_CACHE_DIR: each commit is published as a version, a searcher pulls the version the row
names, a writer on a host without the index pulls it before changing it."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.dispatch import wait_for_embedded_tasks
from apps.plugins import indexes
from apps.plugins.models import Plugin

BASE = "/v1/plugin/custom/plugins"


def _search(tenant, plugin_id: str) -> list[str]:
    response = tenant.client.post(
        "/v1/plugin/search", {"plugin": plugin_id, "query": "purple sea urchin kelp"}, format="json"
    )
    assert response.status_code == 200, response.json()
    return [hit["doc_id"] for hit in response.json()["data"]]


def _published(s3, plugin_id: str) -> set[str]:
    return {key.split("/")[2] for key in s3.stored_keys() if key.startswith(f"indexes/{plugin_id}/")}


def test_an_index_moves_between_hosts_through_storage(transactional_db, tenant, s3_storage, settings, tmp_path):
    host_a = {"MEDIA_ROOT": settings.MEDIA_ROOT, "STORAGE_CACHE_DIR": settings.STORAGE_CACHE_DIR}
    host_b = {"MEDIA_ROOT": tmp_path / "b-media", "STORAGE_CACHE_DIR": tmp_path / "b-cache"}
    indexes.forget()
    plugin_id = tenant.client.post(BASE, {"name": "Notes"}, format="json").json()["plugin_id"]
    uploaded = tenant.client.post(
        f"{BASE}/{plugin_id}/files",
        {
            "file": [
                SimpleUploadedFile("tide.md", b"# Tide pools\n\nThe purple sea urchin grazes kelp at low tide.\n"),
                SimpleUploadedFile("cliffs.txt", b"Granite cliffs erode slowly."),
            ]
        },
        format="multipart",
    )
    assert uploaded.status_code == 202, uploaded.json()
    wait_for_embedded_tasks()
    version = Plugin.objects.get(pk=plugin_id).index_version
    assert version >= 1 and f"v{version}" in _published(s3_storage, plugin_id)

    # Host B: nothing local, its process has never loaded the index.
    for name, value in host_b.items():
        setattr(settings, name, value)
    indexes.forget()
    assert _search(tenant, plugin_id)[0] == "tide.md"
    assert not (Path(settings.MEDIA_ROOT) / "indexes" / plugin_id).exists()
    assert (Path(settings.STORAGE_CACHE_DIR) / "indexes" / plugin_id / f"v{version}" / "meta.json").is_file()

    # A writer on host B pulls the published index before changing it, and publishes the next version.
    file_id = next(f["file_id"] for f in uploaded.json()["data"] if f["file_name"] == "tide.md")
    assert tenant.client.delete(f"{BASE}/{plugin_id}/files/{file_id}").status_code == 200
    newer = Plugin.objects.get(pk=plugin_id).index_version
    assert newer == version + 1
    assert _published(s3_storage, plugin_id) == {f"v{version}", f"v{newer}"}  # older ones are dropped
    assert "tide.md" not in _search(tenant, plugin_id)

    # Host A wrote an older version to its disk: the row's newer version makes its searches pull the newer one.
    for name, value in host_a.items():
        setattr(settings, name, value)
    indexes.forget()  # (one process plays both hosts: host A's process never saw host B's commit)
    assert (Path(settings.MEDIA_ROOT) / "indexes" / plugin_id / "meta.json").is_file()
    assert "tide.md" not in _search(tenant, plugin_id)
    assert (Path(settings.STORAGE_CACHE_DIR) / "indexes" / plugin_id / f"v{newer}").is_dir()

    assert tenant.client.delete(f"{BASE}/{plugin_id}").status_code == 200
    assert _published(s3_storage, plugin_id) == set()
