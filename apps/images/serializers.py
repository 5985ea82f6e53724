"""The one declared shape of text-to-image requests (OpenAI's, plus ``steps``, ``seed``, ``negative_prompt``,
``guidance_scale`` and ``wait``; TigerBot's native one maps onto it) and of the answers."""

from __future__ import annotations

import base64
from typing import Any, TypeVar

from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from apps.core.fields import BlankAsNullField, ConstantField, UnixTimeField, documented_as
from apps.core.serializers import DeletedSerializer, KnownFieldsSerializer
from apps.images import selectors
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


NOT_BLANK = {"type": "string", "pattern": r"\S"}
# OpenAI options taken only at the values that describe what is made here (opaque PNGs, answered whole); another
# value would be a different image or answer, so it is refused as not supported.
HONOURED_VALUES: dict[str, tuple[tuple[Any, ...], str]] = {
    "background": (("auto", "opaque"), "images are opaque"),
    "output_format": (("png",), "images are PNG"),
    "stream": ((False,), "poll the generation instead (wait)"),
}
_FieldT = TypeVar("_FieldT", bound=serializers.Field)


def _honoured_only(field: _FieldT, *, name: str, description: str) -> _FieldT:
    """``field`` documented with its honoured values alone: a request the schema describes is one that is served."""
    kind = "boolean" if isinstance(field, serializers.BooleanField) else "string"
    enum = [*HONOURED_VALUES[name][0], None]
    return documented_as(field, {"type": kind, "nullable": True, "enum": enum, "description": description})


class ImageGenerationRequestSerializer(KnownFieldsSerializer):
    # No moderation is done here; compression applies to JPEG and WebP, partial images to streams, neither made here.
    ignored_fields = frozenset({"moderation", "output_compression", "partial_images"})

    prompt = documented_as(
        serializers.CharField(
            trim_whitespace=False, help_text="What to draw (at most IMAGES_MAX_PROMPT_CHARS characters)."
        ),
        NOT_BLANK,
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
    size = documented_as(
        serializers.CharField(required=False, allow_null=True, default="auto"),
        {
            "type": "string",
            "nullable": True,
            "enum": [*settings.IMAGES_SIZES, "auto", None],
            "description": "WxH among this deployment's sizes (IMAGES_SIZES), or auto.",
        },
    )
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
    style = serializers.CharField(  # type: ignore[assignment]  # a field: the metaclass moves it out of the class
        required=False, allow_null=True, help_text="Accepted and ignored."
    )
    background = _honoured_only(
        serializers.ChoiceField(choices=["transparent", "opaque", "auto"], required=False, allow_null=True),
        name="background",
        description="Images are opaque: transparent is not supported.",
    )
    output_format = _honoured_only(
        serializers.ChoiceField(choices=["png", "jpeg", "webp"], required=False, allow_null=True),
        name="output_format",
        description="Images are PNG: jpeg and webp are not supported.",
    )
    stream = _honoured_only(
        serializers.BooleanField(required=False, allow_null=True),
        name="stream",
        description="true is not supported: a generation not ready within `wait` answers a job to poll.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name, (honoured, reason) in HONOURED_VALUES.items():
            value = attrs.get(name)
            if value is not None and value not in honoured:
                shown = str(value).lower()
                raise serializers.ValidationError({name: f"{name} {shown} is not supported: {reason}."})
        return super().validate(attrs)

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
    """TigerBot's native shape: `text` and `modelVersion`, as in its other `ai_service` routes."""

    text = documented_as(serializers.CharField(trim_whitespace=False), NOT_BLANK)
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


# --- Output: OpenAI's ImagesResponse and Image (openai/types/images_response.py, image.py), plus extensions ------


def image_url(image: GeneratedImage, *, request: Request) -> str:
    return request.build_absolute_uri(reverse("image-file", args=[image.pk]))


class ImageDataSerializer(serializers.Serializer):
    """One image: `url` or `b64_json`, as the request's `response_format` asks, `revised_prompt` when there is
    one, and its `seed` (extension)."""

    # Needs the request in its context, and the job's response_format as context["response_format"].

    url = serializers.SerializerMethodField(
        required=False, help_text="Fetch with the same API key (Authorization: Bearer)."
    )
    b64_json = serializers.SerializerMethodField(required=False)
    revised_prompt = serializers.CharField(required=False)
    seed = serializers.IntegerField(allow_null=True)

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, image: GeneratedImage) -> str | None:
        if self.context["response_format"] == "b64_json":
            return None
        return image_url(image, request=self.context["request"])

    def get_b64_json(self, image: GeneratedImage) -> str | None:
        if self.context["response_format"] != "b64_json":
            return None
        with default_storage.open(image.file.name or "", "rb") as stored:
            return base64.b64encode(stored.read()).decode()

    def to_representation(self, instance: GeneratedImage) -> dict[str, Any]:
        body: dict[str, Any] = super().to_representation(instance)
        return {key: value for key, value in body.items() if key == "seed" or value}


def _images(serializer: serializers.Serializer, job: ImageJob) -> list[dict[str, Any]]:
    context = {**serializer.context, "response_format": job.response_format}
    return list(ImageDataSerializer(selectors.image_list(job=job), many=True, context=context).data)


class ImagesResponseSerializer(serializers.Serializer):
    """A finished generation."""

    # Needs the request in its context (for the images' URLs).

    created = UnixTimeField(source="created_at", allow_null=False)
    id = serializers.CharField(help_text="The generation job's id (extension).")
    model = serializers.CharField(help_text="Extension.")
    size = serializers.CharField()
    data = serializers.SerializerMethodField()  # type: ignore[assignment]  # a field: the metaclass moves it out of the class

    @extend_schema_field(ImageDataSerializer(many=True))
    def get_data(self, job: ImageJob) -> list[dict[str, Any]]:
        return _images(self, job)


class ImageProgressSerializer(serializers.Serializer):
    steps_done = serializers.IntegerField()
    steps_total = serializers.SerializerMethodField()

    def get_steps_total(self, job: ImageJob) -> int:
        return job.steps_total or job.steps


class ImageJobErrorSerializer(serializers.Serializer):
    message = serializers.CharField(source="error_message")
    code = serializers.CharField(source="error_code")
    param = BlankAsNullField(source="error_param")


class ImageJobSerializer(serializers.Serializer):
    """A generation job: `data` once it succeeded, `error` once it failed."""

    # Needs the request in its context (for the images' URLs).

    id = serializers.CharField()
    object = ConstantField("image.generation")
    status = serializers.ChoiceField(choices=ImageJob.Status.choices)
    model = serializers.CharField()
    prompt = serializers.CharField()
    n = serializers.IntegerField()
    size = serializers.CharField()
    created = UnixTimeField(source="created_at", allow_null=False)
    progress = ImageProgressSerializer(source="*")
    data = serializers.SerializerMethodField(required=False, help_text="When succeeded.")  # type: ignore[assignment]  # a field: the metaclass moves it out of the class
    error = ImageJobErrorSerializer(source="*", required=False, help_text="When failed.")

    @extend_schema_field(ImageDataSerializer(many=True))
    def get_data(self, job: ImageJob) -> list[dict[str, Any]]:
        return _images(self, job) if job.status == ImageJob.Status.SUCCEEDED else []

    def to_representation(self, instance: ImageJob) -> dict[str, Any]:
        body: dict[str, Any] = super().to_representation(instance)
        if instance.status != ImageJob.Status.SUCCEEDED:
            del body["data"]
        if instance.status != ImageJob.Status.FAILED:
            del body["error"]
        return body


class ImageJobDeletedSerializer(DeletedSerializer):
    object_name = "image.generation"


class LegacyText2ImageResultSerializer(serializers.Serializer):
    """TigerBot's `data`: the images' URLs and the job's id."""

    # Needs the request in its context (for the images' URLs).

    result = serializers.SerializerMethodField()
    id = serializers.CharField()

    def get_result(self, job: ImageJob) -> list[str]:
        return [image_url(image, request=self.context["request"]) for image in selectors.image_list(job=job)]
