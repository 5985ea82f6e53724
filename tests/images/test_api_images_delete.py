"""``DELETE /v1/images/generations/{id}``: a finished generation goes with its images, rows and stored files
(images and thumbnails) alike; another tenant's, an unknown and an unfinished one stay."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.storage import default_storage

from apps.images.models import GeneratedImage, ImageJob

URL = "/v1/images/generations"


def generate(tenant: Any) -> dict[str, Any]:
    response = tenant.client.post(URL, {"prompt": "a tiger", "size": "64x64", "n": 2, "steps": 1}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def stored_names(job_id: str) -> list[str]:
    images = GeneratedImage.objects.filter(job_id=job_id)
    return [str(field.name) for image in images for field in (image.file, image.thumbnail)]


def assert_kept(tenant: Any, job: dict[str, Any], names: list[str]) -> None:
    assert tenant.client.get(f"{URL}/{job['id']}").status_code == 200
    assert all(tenant.client.get(item["url"]).status_code == 200 for item in job["data"])
    assert len(names) == 4 and all(default_storage.exists(name) for name in names)


def test_a_finished_generation_is_deleted_with_every_image_and_thumbnail(tenant, image_model):
    job = generate(tenant)
    names = stored_names(job["id"])
    assert len(names) == 4 and all(default_storage.exists(name) for name in names)

    response = tenant.client.delete(f"{URL}/{job['id']}")
    assert response.status_code == 200, response.json()
    assert response.json() == {"id": job["id"], "object": "image.generation", "deleted": True}
    assert not any(default_storage.exists(name) for name in names)
    assert not ImageJob.objects.filter(pk=job["id"]).exists()
    assert not GeneratedImage.objects.filter(job_id=job["id"]).exists()
    for url in (f"{URL}/{job['id']}", *(item["url"] for item in job["data"])):
        gone = tenant.client.get(url)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    again = tenant.client.delete(f"{URL}/{job['id']}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


def test_another_tenants_generation_is_404_and_kept(tenant, other_tenant, image_model):
    job = generate(tenant)
    response = other_tenant.client.delete(f"{URL}/{job['id']}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert_kept(tenant, job, stored_names(job["id"]))


def test_an_unfinished_generation_is_409_and_kept(tenant, image_model):
    job = generate(tenant)
    names = stored_names(job["id"])
    for status in ("queued", "running"):
        ImageJob.objects.filter(pk=job["id"]).update(status=status, finished_at=None)
        response = tenant.client.delete(f"{URL}/{job['id']}")
        assert response.status_code == 409, response.json()
        error = response.json()["error"]
        assert (error["code"], error["type"]) == ("job_not_finished", "conflict_error")
        assert "wait until it finishes" in error["message"]
        assert ImageJob.objects.get(pk=job["id"]).status == status
        assert GeneratedImage.objects.filter(job_id=job["id"]).count() == 2
        assert all(default_storage.exists(name) for name in names)


@pytest.mark.django_db
def test_unknown_id_is_404(tenant):
    response = tenant.client.delete(f"{URL}/imggen-nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
