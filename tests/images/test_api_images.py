"""``POST /v1/images/generations`` on a tiny random diffusers pipeline: the whole path (serializer, job, serving
task on a background thread, storage, authenticated URLs, usage) on the CPU."""

from __future__ import annotations

import base64

import pytest

from apps.images.models import GeneratedImage, ImageJob
from apps.usage.models import UsageRecord
from tests.images.conftest import png_size

URL = "/v1/images/generations"


def test_b64_json_returns_n_pngs_of_the_size(tenant, image_model):
    response = tenant.client.post(
        URL, {"prompt": "a tiger", "size": "64x64", "n": 2, "response_format": "b64_json"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["model"] == "tiny-sd" and isinstance(body["created"], int)
    images = [base64.b64decode(item["b64_json"]) for item in body["data"]]
    assert [png_size(image) for image in images] == [(64, 64), (64, 64)]
    assert images[0] != images[1]  # seeds s and s + 1
    job = ImageJob.objects.get(pk=body["id"])
    assert (job.status, job.steps, job.steps_done, job.steps_total) == ("succeeded", 30, 30, 30)


def test_url_is_served_to_its_owner_only(tenant, other_tenant, anon, image_model):
    response = tenant.client.post(
        URL, {"prompt": "a tiger", "size": "64x64", "n": 2, "steps": 2, "negative_prompt": "blurry"}, format="json"
    )
    assert response.status_code == 200, response.json()
    urls = [item["url"] for item in response.json()["data"]]
    assert len(urls) == 2 and all(url.startswith("http://testserver/v1/images/files/img-") for url in urls)
    for url in urls:
        fetched = tenant.client.get(url)
        assert fetched.status_code == 200 and fetched["Content-Type"] == "image/png"
        assert png_size(b"".join(fetched.streaming_content)) == (64, 64)
    stranger = other_tenant.client.get(urls[0])
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "not_found"
    assert anon.get(urls[0]).status_code == 401
    job_id = response.json()["id"]
    assert other_tenant.client.get(f"{URL}/{job_id}").status_code == 404


def test_same_seed_gives_the_same_bytes(tenant, image_model):
    def generate(seed: int) -> list[str]:
        response = tenant.client.post(
            URL,
            {"prompt": "a tiger", "size": "64x64", "n": 2, "seed": seed, "steps": 3, "response_format": "b64_json"},
            format="json",
        )
        assert response.status_code == 200, response.json()
        assert [item["seed"] for item in response.json()["data"]] == [seed, seed + 1]
        return [item["b64_json"] for item in response.json()["data"]]

    first = generate(42)
    assert generate(42) == first
    assert generate(43)[0] == first[1]  # image i uses seed + i
    assert generate(7)[0] != first[0]


def test_usage_counts_images(tenant, image_model):
    for n in (2, 1):
        response = tenant.client.post(URL, {"prompt": "a tiger", "size": "64x64", "n": n, "steps": 1}, format="json")
        assert response.status_code == 200
    records = UsageRecord.objects.filter(owner=tenant.user, route=URL)
    assert sorted(records.values_list("images", flat=True)) == [1, 2]
    assert set(records.values_list("model", flat=True)) == {"tiny-sd"}
    usage = tenant.client.get("/v1/usage").json()
    assert usage["totals"]["images"] == 3


def test_long_generation_is_a_job_with_progress(tenant, image_model):
    response = tenant.client.post(
        URL, {"prompt": "a tiger", "size": "64x64", "n": 1, "steps": 4, "wait": 0}, format="json"
    )
    assert response.status_code == 202, response.json()
    job = response.json()
    assert job["object"] == "image.generation" and job["status"] in ("queued", "running", "succeeded")
    assert job["progress"]["steps_total"] == 4
    done = tenant.client.get(f"{URL}/{job['id']}", {"wait": 30}).json()
    assert done["status"] == "succeeded", done
    assert done["progress"] == {"steps_done": 4, "steps_total": 4}
    assert tenant.client.get(done["data"][0]["url"]).status_code == 200


def test_failed_generation_names_the_size(tenant, image_model, settings):
    settings.IMAGES_SIZES = [*settings.IMAGES_SIZES, "60x60"]  # not a multiple of the VAE's 8
    response = tenant.client.post(URL, {"prompt": "a tiger", "size": "60x60", "steps": 1}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "size"
    assert not GeneratedImage.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"prompt": ""}, 400, "prompt"),
        ({"prompt": "   "}, 400, "prompt"),
        ({"prompt": "x" * 4001}, 400, "prompt"),
        ({}, 400, "prompt"),
        ({"prompt": "a tiger", "size": "65x65"}, 400, "size"),
        ({"prompt": "a tiger", "n": 5}, 400, "n"),
        ({"prompt": "a tiger", "n": 0}, 400, "n"),
        ({"prompt": "a tiger", "steps": 151}, 400, "steps"),
        ({"prompt": "a tiger", "response_format": "gif"}, 400, "response_format"),
        ({"prompt": "a tiger", "model": "no-such-model"}, 404, "model"),
        ({"prompt": "a tiger", "model": "a-chat-model"}, 400, "model"),
        ({"prompt": "a tiger", "stpes": 2}, 400, "stpes"),
        ({"prompt": "a tiger", "background": "transparent"}, 400, "background"),
        ({"prompt": "a tiger", "output_format": "webp"}, 400, "output_format"),
        ({"prompt": "a tiger", "stream": True}, 400, "stream"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(tenant, tiny_pipeline, body, status, param):
    from apps.chat.models import ModelEndpoint

    ModelEndpoint.objects.create(name="tiny-sd", kind=ModelEndpoint.Kind.IMAGE, path=str(tiny_pipeline))
    ModelEndpoint.objects.create(name="a-chat-model", path="nowhere")
    response = tenant.client.post(URL, body, format="json")
    assert response.status_code == status, response.json()
    assert response.json()["error"]["param"] == param
    assert not ImageJob.objects.exists()


def test_openai_options_are_refused_by_name_unless_they_change_nothing(tenant, tiny_pipeline):
    from apps.chat.models import ModelEndpoint

    ModelEndpoint.objects.create(name="tiny-sd", kind=ModelEndpoint.Kind.IMAGE, path=str(tiny_pipeline))
    body = {"model": "tiny-sd", "prompt": "a tiger", "size": "64x64", "wait": 0}
    for extra, message in [
        ({"stpes": 2}, "stpes: stpes is not a known field."),
        ({"stream": True}, "stream: stream true is not supported: poll the generation instead (wait)."),
        ({"output_format": "jpeg"}, "output_format: output_format jpeg is not supported: images are PNG."),
    ]:
        error = tenant.client.post(URL, {**body, **extra}, format="json").json()["error"]
        assert (error["param"], error["code"], error["message"]) == (next(iter(extra)), "invalid_request", message)
    assert not ImageJob.objects.exists()
    documented = {"user": "someone", "moderation": "low", "partial_images": 0, "stream": False, "background": "auto"}
    response = tenant.client.post(URL, {**body, **documented}, format="json")
    assert response.status_code == 202, response.json()
