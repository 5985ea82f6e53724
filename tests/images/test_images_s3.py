"""Images kept in S3-compatible storage (moto's server: no real object store is reachable where the suite runs)
are stored and served through ``default_storage`` exactly as local files are."""

from __future__ import annotations

from tests.images.conftest import png_size
from tests.storage.conftest import moto_endpoint, s3, s3_storage  # noqa: F401


def test_images_live_in_the_bucket(tenant, other_tenant, image_model, s3_storage):  # noqa: F811
    response = tenant.client.post(
        "/v1/images/generations", {"prompt": "a tiger", "size": "64x64", "n": 2, "steps": 1}, format="json"
    )
    assert response.status_code == 200, response.json()
    job_id = response.json()["id"]
    assert s3_storage.stored_keys() == sorted(
        f"images/{job_id}/{name}" for name in ("0.png", "0.thumb.png", "1.png", "1.thumb.png")
    )
    url = response.json()["data"][1]["url"]
    assert png_size(b"".join(tenant.client.get(url).streaming_content)) == (64, 64)
    assert other_tenant.client.get(url).status_code == 404
