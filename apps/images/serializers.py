"""The one declared shape of text-to-image requests (OpenAI's, plus ``steps``, ``seed``, ``negative_prompt``,
``guidance_scale`` and ``wait``; TigerBot's native one maps onto it) and of the answers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers
from rest_framework.request import Request

from apps.images.models import GeneratedImage, ImageJob
from apps.images.services import ImageParams
from workers.images.pipeline import MAX_SEED

# Denoising steps per OpenAI ``quality`` (dall-e-2/3 and gpt-image names alike) when ``steps`` is not given.
STEPS_BY_QUALITY = {"low": 15, "standard": 30, "medium": 30, "auto": 30, "hd": 50, "high": 50}


def parse_size(value: str) -> tuple[int, int]:
    """``"WxH"`` among IMAGES_SIZES, or ``"auto"`` (IMAGES_DEFAULT_SIZE)."""
    size = settings.IMAGES_DEFAULT_SIZE if value == "auto" else value
    if size not in settings.IMAGES_SIZES:
        raise serializers.ValidationError(
            f"Unknown size {value!r}; use one of {', '.join(settings.IMAGES_SIZES)} or auto."
        )
    width, height = size.split("x")
    return int(width), int(height)


class ImageGenerationRequestSerializer(serializers.Serializer):
    prompt = serializers.CharField(
        trim_whitespace=False, allow_blank=True, help_text="What to draw (at most IMAGES_MAX_PROMPT_CHARS characters)."
    )
    model = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=200,
        help_text="An image model's id (default: the default image model).",
    )
    n = serializers.IntegerField(
        required=False, allow_null=True, default=1, min_value=1, help_text="Images to generate, 1 to IMAGES_MAX_N."
    )
    size = serializers.CharField(required=False, allow_null=True, default="auto", help_text="WxH, or auto.")
    response_format = serializers.ChoiceField(
        choices=["url", "b64_json"], required=False, allow_null=True, default="url"
    )
    quality = serializers.ChoiceField(
        choices=sorted(STEPS_BY_QUALITY),
        required=False,
        allow_null=True,
        default="auto",
        help_text="low 15, standard/medium/auto 30, hd/high 50 steps.",
    )
    steps = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Denoising steps (extension; overrides quality)."
    )
    seed = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_SEED,
        help_text="Same seed, same request: same image bytes (extension). Image i uses seed + i.",
    )
    negative_prompt = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        trim_whitespace=False,
        help_text="What not to draw (extension).",
    )
    guidance_scale = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=50,
        help_text="Classifier-free guidance (extension; model default).",
    )
    wait = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="Seconds to wait for the images (at most IMAGES_WAIT_S, the default) "
        "before answering 202 with a job to poll (extension).",
    )
    user = serializers.CharField(required=False, allow_blank=True)
    style = serializers.CharField(required=False, allow_null=True, help_text="Accepted and ignored.")

    def validate_prompt(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("prompt must not be empty.")
        if len(value) > settings.IMAGES_MAX_PROMPT_CHARS:
            raise serializers.ValidationError(f"prompt is longer than {settings.IMAGES_MAX_PROMPT_CHARS} characters.")
        return value

    def validate_n(self, value: int | None) -> int:
        if value is not None and value > settings.IMAGES_MAX_N:
            raise serializers.ValidationError(f"n must be at most {settings.IMAGES_MAX_N}.")
        return value or 1

    def validate_size(self, value: str | None) -> tuple[int, int]:
        return parse_size(value or "auto")

    def validate_steps(self, value: int | None) -> int | None:
        if value is not None and value > settings.IMAGES_MAX_STEPS:
            raise serializers.ValidationError(f"steps must be at most {settings.IMAGES_MAX_STEPS}.")
        return value

    def validate_negative_prompt(self, value: str | None) -> str:
        if value and len(value) > settings.IMAGES_MAX_PROMPT_CHARS:
            raise serializers.ValidationError(
                f"negative_prompt is longer than {settings.IMAGES_MAX_PROMPT_CHARS} characters."
            )
        return value or ""

    def params(self) -> ImageParams:
        data = self.validated_data
        width, height = data["size"]
        steps = data.get("steps") or STEPS_BY_QUALITY[data.get("quality") or "auto"]
        return ImageParams(
            prompt=data["prompt"],
            width=width,
            height=height,
            n=data["n"],
            steps=steps,
            response_format=data.get("response_format") or "url",
            seed=data.get("seed"),
            negative_prompt=data.get("negative_prompt") or "",
            guidance_scale=data.get("guidance_scale"),
        )

    def wait_s(self) -> float:
        wait = self.validated_data.get("wait")
        return settings.IMAGES_WAIT_S if wait is None else min(wait, settings.IMAGES_WAIT_S)


class LegacyText2ImageSerializer(serializers.Serializer):
    """TigerBot's native shape: ``text`` and ``modelVersion`` as in its other ``ai_service`` routes."""

    text = serializers.CharField(trim_whitespace=False, allow_blank=True)
    modelVersion = serializers.CharField(required=False, allow_null=True, max_length=200)
    width = serializers.IntegerField(required=False, min_value=1)
    height = serializers.IntegerField(required=False, min_value=1)
    num = serializers.IntegerField(required=False, min_value=1)
    steps = serializers.IntegerField(required=False, min_value=1)
    seed = serializers.IntegerField(required=False, allow_null=True)
    negativePrompt = serializers.CharField(required=False, allow_blank=True)

    def openai_body(self) -> dict[str, Any]:
        data = self.validated_data
        body: dict[str, Any] = {
            "prompt": data["text"],
            "model": data.get("modelVersion"),
            "n": data.get("num", 1),
            "steps": data.get("steps"),
            "seed": data.get("seed"),
            "negative_prompt": data.get("negativePrompt"),
            "response_format": "url",
        }
        if "width" in data or "height" in data:
            width = data.get("width") or data.get("height")
            body["size"] = f"{width}x{data.get('height') or width}"
        return body


# --- Output -----------------------------------------------------------------------------------------------


class ImageDataSerializer(serializers.Serializer):
    url = serializers.URLField(required=False, help_text="Fetch with the same API key (Authorization: Bearer).")
    b64_json = serializers.CharField(required=False)
    revised_prompt = serializers.CharField(required=False)
    seed = serializers.IntegerField(required=False, allow_null=True)


class ImagesResponseSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    data = ImageDataSerializer(many=True)
    id = serializers.CharField(help_text="The generation job's id.")
    model = serializers.CharField()
    size = serializers.CharField()


class ImageJobSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="image.generation")
    status = serializers.ChoiceField(choices=ImageJob.Status.choices)
    model = serializers.CharField()
    prompt = serializers.CharField()
    n = serializers.IntegerField()
    size = serializers.CharField()
    created = serializers.IntegerField()
    progress = serializers.DictField(help_text="{steps_done, steps_total}")
    data = ImageDataSerializer(many=True, required=False, help_text="When succeeded.")
    error = serializers.DictField(required=False, help_text="When failed: {message, code, param}.")


def image_url(image: GeneratedImage, *, request: Request) -> str:
    return request.build_absolute_uri(reverse("image-file", args=[image.pk]))


def render_image(image: GeneratedImage, *, response_format: str, request: Request) -> dict[str, Any]:
    import base64

    from django.core.files.storage import default_storage

    item: dict[str, Any]
    if response_format == "b64_json":
        with default_storage.open(image.file.name, "rb") as stored:
            item = {"b64_json": base64.b64encode(stored.read()).decode()}
    else:
        item = {"url": image_url(image, request=request)}
    if image.revised_prompt:
        item["revised_prompt"] = image.revised_prompt
    item["seed"] = image.seed
    return item


def render_images(job: ImageJob, images: list[GeneratedImage], *, request: Request) -> dict[str, Any]:
    return {
        "created": int(job.created_at.timestamp()),
        "id": job.pk,
        "model": job.model,
        "size": job.size,
        "data": [render_image(image, response_format=job.response_format, request=request) for image in images],
    }


def render_job(job: ImageJob, images: list[GeneratedImage], *, request: Request) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": job.pk,
        "object": "image.generation",
        "status": job.status,
        "model": job.model,
        "prompt": job.prompt,
        "n": job.n,
        "size": job.size,
        "created": int(job.created_at.timestamp()),
        "progress": {"steps_done": job.steps_done, "steps_total": job.steps_total or job.steps},
    }
    if job.status == ImageJob.Status.SUCCEEDED:
        body["data"] = render_images(job, images, request=request)["data"]
    elif job.status == ImageJob.Status.FAILED:
        body["error"] = {"message": job.error_message, "code": job.error_code, "param": job.error_param or None}
    return body
