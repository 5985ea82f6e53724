from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import domain_error_for_status
from apps.core.legacy import LegacyApi, legacy_ok
from apps.images import selectors, services
from apps.images.models import ImageJob
from apps.images.serializers import (
    ImageGenerationRequestSerializer,
    ImageJobSerializer,
    ImagesResponseSerializer,
    LegacyText2ImageSerializer,
    image_url,
    render_images,
    render_job,
)
from workers.errors import DomainError, InvalidRequest, NotFound


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
        owner=request.user,
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
        images = selectors.image_list(job=job)
        if job.status == ImageJob.Status.SUCCEEDED:
            return Response(render_images(job, images, request=request))
        return Response(render_job(job, images, request=request), status=status.HTTP_202_ACCEPTED)


class ImageGenerationDetailApi(APIView):
    @extend_schema(
        operation_id="images_generation_retrieve",
        tags=["images"],
        responses=ImageJobSerializer,
        parameters=[OpenApiParameter("wait", float, description="Seconds (at most 30) to wait for the job to finish.")],
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = services.image_job_fail_if_stale(job=selectors.image_job_get(owner=request.user, job_id=job_id))
        try:
            wait = min(max(float(request.query_params.get("wait", 0)), 0.0), 30.0)
        except ValueError:
            raise InvalidRequest("wait must be a number of seconds.", param="wait") from None
        job = selectors.image_job_wait(job=job, timeout_s=wait)
        return Response(render_job(job, selectors.image_list(job=job), request=request))


class ImageFileApi(APIView):
    @extend_schema(
        operation_id="images_file",
        tags=["images"],
        responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, "The image.")},
    )
    def get(self, request: Request, image_id: str) -> FileResponse:
        image = selectors.image_get(owner=request.user, image_id=image_id)
        if not default_storage.exists(image.file.name):
            raise NotFound("This image is no longer stored.", code="file_not_found")
        return FileResponse(default_storage.open(image.file.name, "rb"), content_type=image.content_type)


class LegacyText2ImageApi(LegacyApi):
    """TigerBot's ``POST /bot-service/ai_service/text2image {text, modelVersion, width, height, num, ...}``."""

    @extend_schema(
        operation_id="legacy_text2image",
        tags=["legacy"],
        request=LegacyText2ImageSerializer,
        responses=OpenApiResponse(
            description="{code: 200, msg, data: {result: [image url], id}} or, "
            "still running, {code: 202, ..., data: {id, status}}"
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = LegacyText2ImageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = _generate(request, serializer.openai_body())
        if job.status != ImageJob.Status.SUCCEEDED:
            return Response(
                {"code": 202, "msg": "running", "data": render_job(job, [], request=request)},
                status=status.HTTP_202_ACCEPTED,
            )
        urls = [image_url(image, request=request) for image in selectors.image_list(job=job)]
        return legacy_ok({"result": urls, "id": job.pk})
