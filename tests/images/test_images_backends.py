"""The other ways in and out: the openai SDK over HTTP, an OpenAI-compatible upstream (a fake server here, no
real image server runs in the tests), TigerBot's native route, stale jobs and the admin's thumbnails."""

from __future__ import annotations

import base64
import time
from datetime import timedelta

import openai
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from apps.chat.models import ModelEndpoint
from apps.images.models import ImageJob
from apps.images.tasks import fail_stale_jobs_task
from apps.usage.models import UsageRecord
from tests.images.conftest import png_size, solid_png

URL = "/v1/images/generations"


def test_openai_sdk_images_generate(live_server, tenant, image_model):
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0, timeout=120)
    result = client.images.generate(
        model="tiny-sd",
        prompt="a tiger",
        size="64x64",
        n=2,
        response_format="b64_json",
        # OpenAI's options that change nothing here, or only at the values that describe what is made here.
        user="someone",
        moderation="low",
        output_compression=80,
        output_format="png",
        background="opaque",
        extra_body={"steps": 2, "seed": 5},
    )
    assert [png_size(base64.b64decode(item.b64_json)) for item in result.data] == [(64, 64), (64, 64)]
    by_url = client.images.generate(
        model="tiny-sd", prompt="a tiger", size="64x64", n=1, extra_body={"steps": 2, "seed": 5}
    )
    assert by_url.data[0].url.startswith(f"{live_server.url}/v1/images/files/")
    with pytest.raises(openai.BadRequestError) as error:
        client.images.generate(model="tiny-sd", prompt="a tiger", size="1x1")
    assert error.value.body["param"] == "size"
    for options, param in [({"extra_body": {"stpes": 2}}, "stpes"), ({"output_format": "jpeg"}, "output_format")]:
        with pytest.raises(openai.BadRequestError) as error:
            client.images.generate(model="tiny-sd", prompt="a tiger", size="64x64", **options)
        assert error.value.body["param"] == param


@pytest.fixture
def upstream_model(transactional_db, fake_image_server):
    return ModelEndpoint.objects.create(
        name="remote-sd",
        kind=ModelEndpoint.Kind.IMAGE,
        backend=ModelEndpoint.Backend.OPENAI_UPSTREAM,
        base_url=fake_image_server.url,
        upstream_model="sdxl",
        upstream_api_key="sk-up",
    )


def test_upstream_backend_stores_its_images(tenant, upstream_model, fake_image_server):
    response = tenant.client.post(
        URL,
        {"model": "remote-sd", "prompt": "a tiger", "size": "64x64", "n": 2, "seed": 9, "negative_prompt": "blur"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    sent = fake_image_server.requests[0]
    assert sent == {
        "model": "sdxl",
        "prompt": "a tiger",
        "n": 2,
        "size": "64x64",
        "response_format": "b64_json",
        "steps": 30,
        "seed": 9,
        "negative_prompt": "blur",
    }
    assert fake_image_server.headers[0]["Authorization"] == "Bearer sk-up"
    data = response.json()["data"]
    assert [item["revised_prompt"] for item in data] == ["a tiger (0)", "a tiger (1)"]
    fetched = b"".join(tenant.client.get(data[1]["url"]).streaming_content)
    assert fetched == solid_png((80, 0, 0))
    assert UsageRecord.objects.get(owner=tenant.user).images == 2


def test_upstream_failure_is_a_502(tenant, upstream_model, fake_image_server):
    fake_image_server.status = 500
    response = tenant.client.post(URL, {"model": "remote-sd", "prompt": "a tiger", "size": "64x64"}, format="json")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    assert not UsageRecord.objects.exists()


def test_tigerbot_native_route(tenant, other_tenant, image_model):
    response = tenant.client.post(
        "/bot-service/ai_service/text2image",
        # Old TigerBot clients send fields of their own: ignored on this route.
        {"text": "a tiger", "width": 64, "height": 64, "num": 2, "steps": 2, "seed": 1, "clientVersion": "1.0"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["code"] == 200 and len(body["data"]["result"]) == 2
    assert png_size(b"".join(tenant.client.get(body["data"]["result"][0]).streaming_content)) == (64, 64)
    assert other_tenant.client.get(body["data"]["result"][0]).status_code == 404
    bad = tenant.client.post("/bot-service/ai_service/text2image", {"text": ""}, format="json")
    assert bad.status_code == 400 and bad.json()["data"]["error"]["param"] == "text"


def test_a_job_whose_worker_vanished_fails(tenant, db):
    ModelEndpoint.objects.create(name="tiny-sd", kind=ModelEndpoint.Kind.IMAGE, path="nowhere")
    long_ago = timezone.now() - timedelta(hours=2)
    job = ImageJob.objects.create(
        owner=tenant.user,
        route=URL,
        model="tiny-sd",
        prompt="a tiger",
        width=64,
        height=64,
        steps=30,
        status=ImageJob.Status.RUNNING,
        started_at=long_ago,
        heartbeat_at=long_ago,
        steps_done=3,
        steps_total=30,
    )
    assert tenant.client.get(f"{URL}/{job.pk}").json()["status"] == "running"  # reading it sweeps nothing
    assert fail_stale_jobs_task.delay().get() == 1
    body = tenant.client.get(f"{URL}/{job.pk}").json()
    assert body["status"] == "failed" and body["error"]["code"] == "worker_lost"
    assert body["progress"] == {"steps_done": 3, "steps_total": 30}


def test_admin_lists_jobs_with_thumbnails(tenant, image_model):
    response = tenant.client.post(URL, {"prompt": "a tiger", "size": "64x64", "n": 2, "steps": 1}, format="json")
    job_id = response.json()["id"]
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    browser = Client()
    browser.login(username="root", password="pw")
    listing = browser.get("/admin/images/imagejob/").content.decode()
    assert job_id in listing and listing.count('src="data:image/png;base64,') == 2
    detail = browser.get(f"/admin/images/imagejob/{job_id}/change/").content.decode()
    assert detail.count('src="data:image/png;base64,') == 2 and "a tiger" in detail


def test_generation_runs_on_a_serve_worker(tenant, image_model):
    from tests.conftest import threaded_worker
    from tigerplatform.celery import queue_for_task

    assert queue_for_task("images.generate") == "serve"
    assert queue_for_task("images.maintenance.fail_stale_jobs") == "default"
    with threaded_worker(queues=["serve", "default"], concurrency=1):
        response = tenant.client.post(
            URL,
            {"prompt": "a tiger", "size": "64x64", "n": 2, "steps": 2, "seed": 3, "response_format": "b64_json"},
            format="json",
        )
        assert response.status_code == 200, response.json()
        assert [png_size(base64.b64decode(item["b64_json"])) for item in response.json()["data"]] == [(64, 64)] * 2
        deadline = timezone.now() + timedelta(seconds=30)  # the usage record is the default queue's task
        while not UsageRecord.objects.exists() and timezone.now() < deadline:
            time.sleep(0.1)
    assert UsageRecord.objects.get(owner=tenant.user).images == 2
