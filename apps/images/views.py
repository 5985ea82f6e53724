from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.caller import request_user
from apps.core.errors import domain_error_for_status
from apps.core.legacy import LegacyApi, legacy_ok
from apps.core.schema import legacy_envelope
from apps.core.serializers import WaitQuerySerializer
from apps.images import selectors, services
from apps.images.models import ImageJob
from apps.images.serializers import (
    ImageGenerationRequestSerializer,
    ImageJobDeletedSerializer,
    ImageJobSerializer,
    ImagesResponseSerializer,
    LegacyText2ImageResultSerializer,
    LegacyText2ImageSerializer,
)
from workers.errors import DomainError, NotFound

_MAX_DETAIL_WAIT_S = 30.0


def _job_error(job: ImageJob) -> DomainError:
    return domain_error_for_status(
        job.error_status or 503,
        job.error_message or "The generation failed.",
        code=job.error_code or "generation_failed",
        param=job.error_param or None,
    )


def _generate(request: Request, body: Any) -> ImageJob:
    """Submit and wait (up to ``wait``); a failed generation raises its error."""
    serializer = ImageGenerationRequestSerializer(data=body)
    serializer.is_valid(raise_exception=True)
    job = services.image_generation_create(
        owner=request_user(request),
        api_key_id=request.auth.pk if request.auth else None,
        route=request.path,
        model=serializer.validated_data.get("model"),
        params=serializer.params(),
    )
    job = selectors.image_job_wait(job=job, timeout_s=serializer.wait_s())
    if job.status == ImageJob.Status.FAILED:
        raise _job_error(job)
    return job


class ImageGenerationsApi(APIView):
    @extend_schema(
        operation_id="images_generate",
        tags=["images"],
        request=ImageGenerationRequestSerializer,
        responses={200: ImagesResponseSerializer, 202: ImageJobSerializer},
        description="OpenAI's images.generate. 200 with the images when they are ready within `wait` seconds "
        "(default and at most IMAGES_WAIT_S); 202 with the job otherwise: poll "
        "`GET /v1/images/generations/{id}` (progress: steps done / total).",
    )
    def post(self, request: Request) -> Response:
        job = _generate(request, request.data)
        context = {"request": request}
        if job.status == ImageJob.Status.SUCCEEDED:
            return Response(ImagesResponseSerializer(job, context=context).data)
        return Response(ImageJobSerializer(job, context=context).data, status=status.HTTP_202_ACCEPTED)


class ImageGenerationDetailApi(APIView):
    @extend_schema(
        operation_id="images_generation_retrieve",
        tags=["images"],
        responses=ImageJobSerializer,
        parameters=[WaitQuerySerializer],
    )
    def get(self, request: Request, job_id: str) -> Response:
        query = WaitQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        job = selectors.image_job_get(owner=request_user(request), job_id=job_id)
        job = selectors.image_job_wait(job=job, timeout_s=min(query.validated_data["wait"], _MAX_DETAIL_WAIT_S))
        return Response(ImageJobSerializer(job, context={"request": request}).data)

    @extend_schema(
        operation_id="images_generations_delete",
        tags=["images"],
        responses={200: ImageJobDeletedSerializer},
        description="Delete a finished generation with its images (every image file and thumbnail). A generation "
        "still queued or running answers 409 (`job_not_finished`): wait until it finishes, then delete it.",
    )
    def delete(self, request: Request, job_id: str) -> Response:
        job = selectors.image_job_get(owner=request_user(request), job_id=job_id)
        services.image_generation_delete(job=job)
        return Response(ImageJobDeletedSerializer({"id": job_id, "deleted": True}).data)


class ImageFileApi(APIView):
    @extend_schema(
        operation_id="images_file",
        tags=["images"],
        responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, "The image.")},
    )
    def get(self, request: Request, image_id: str) -> FileResponse:
        image = selectors.image_get(owner=request_user(request), image_id=image_id)
        name = image.file.name
        if not name or not default_storage.exists(name):
            raise NotFound("This image is no longer stored.", code="file_not_found")
        return FileResponse(default_storage.open(name, "rb"), content_type=image.content_type)


class LegacyText2ImageApi(LegacyApi):
    """TigerBot's ``POST /bot-service/ai_service/text2image {text, modelVersion, width, height, num, ...}``."""

    @extend_schema(
        operation_id="legacy_text2image",
        tags=["legacy"],
        request=LegacyText2ImageSerializer,
        responses={200: legacy_envelope(LegacyText2ImageResultSerializer), 202: legacy_envelope(ImageJobSerializer)},
        description="202 (`code` 202, `msg` running) with the job while it is still running.",
    )
    def post(self, request: Request) -> Response:
        serializer = LegacyText2ImageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = _generate(request, serializer.openai_body())
        context = {"request": request}
        if job.status != ImageJob.Status.SUCCEEDED:
            return Response(
                {"code": 202, "msg": "running", "data": ImageJobSerializer(job, context=context).data},
                status=status.HTTP_202_ACCEPTED,
            )
        return legacy_ok(LegacyText2ImageResultSerializer(job, context=context).data)
