from __future__ import annotations

from typing import TypeVar

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.pagination import list_body, page_params, paginate_newest_first
from apps.text import selectors
from apps.text.models import SummarizationJob, TextJob
from apps.text.serializers import (
    Pdf2TextCreateInputSerializer,
    Pdf2TextDetailOutputSerializer,
    Pdf2TextListOutputSerializer,
    SummarizationCreateInputSerializer,
    SummarizationFileInputSerializer,
    SummarizationListOutputSerializer,
    SummarizationOutputSerializer,
    SummarizationTextInputSerializer,
    WaitQuerySerializer,
    render_pdf2text,
    render_summarization,
)
from apps.text.services import pdf2text, summarization
from apps.text.services.jobs import file_too_large, text_job_fail_if_stale, text_jobs_fail_stale
from workers.errors import NotFound, PayloadTooLarge

J = TypeVar("J", bound=TextJob)

PAGE_PARAMETERS = [
    OpenApiParameter("after", str, description="Id of the last object of the previous page."),
    OpenApiParameter("limit", int, description="Page size, 1–100 (default 20)."),
]
WAIT_PARAMETER = OpenApiParameter(
    "wait", float, description="Seconds (at most 30) to wait for the job to finish before answering."
)
# Multipart framing and the form's other fields, on top of the file itself.
_FORM_OVERHEAD_BYTES = 1024 * 1024


def _reject_oversized_body(request: Request, *, max_bytes: int) -> None:
    """413 from the Content-Length alone, before the body is read (an upload's exact size is checked again).
    A body that is not a multipart upload (JSON text) is held in memory, up to DATA_UPLOAD_MAX_MEMORY_SIZE."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if not request.content_type.startswith("multipart/"):
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise PayloadTooLarge(
                f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; send "
                "long documents as a file.",
                code="input_too_long",
                param="text",
            )
    elif length > max_bytes + _FORM_OVERHEAD_BYTES:
        raise file_too_large(max_bytes=max_bytes)


def _wait_seconds(request: Request) -> float:
    query = WaitQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return min(query.validated_data["wait"], settings.TEXT_MAX_WAIT_S)


def _waited(job: J, *, wait_s: float) -> J:
    return selectors.text_job_wait(job=job, timeout_s=wait_s) if wait_s and not job.is_finished else job


def _created_status(job: TextJob) -> int:
    return status.HTTP_201_CREATED if job.is_finished else status.HTTP_202_ACCEPTED


def _file_response(job: TextJob, *, content_type: str) -> FileResponse:
    if not job.file or not default_storage.exists(job.file.name):
        raise NotFound("The file of this job is no longer stored.", code="file_not_found")
    return FileResponse(
        default_storage.open(job.file.name, "rb"), content_type=content_type, filename=job.filename or None
    )


class Pdf2TextListCreateApi(APIView):
    @extend_schema(
        operation_id="pdf2text_list", tags=["text"], parameters=PAGE_PARAMETERS, responses=Pdf2TextListOutputSerializer
    )
    def get(self, request: Request) -> Response:
        params = page_params(request.query_params)
        text_jobs_fail_stale()
        jobs, has_more = paginate_newest_first(selectors.pdf2text_job_list(owner=request.user), **params)
        return Response(
            list_body(jobs, has_more=has_more, render=lambda job: render_pdf2text(job, request=request, detail=False))
        )

    @extend_schema(
        operation_id="pdf2text_create",
        tags=["text"],
        parameters=[WAIT_PARAMETER],
        request={"multipart/form-data": Pdf2TextCreateInputSerializer},
        responses={201: Pdf2TextDetailOutputSerializer, 202: Pdf2TextDetailOutputSerializer},
        description="Upload a PDF for text extraction. 201 when the job has already finished (no broker, or "
        "`wait`), 202 while it is queued or running: poll `GET /v1/pdf2text/{id}`.",
    )
    def post(self, request: Request) -> Response:
        _reject_oversized_body(request, max_bytes=settings.PDF2TEXT_MAX_BYTES)
        wait = _wait_seconds(request)
        serializer = Pdf2TextCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = pdf2text.pdf2text_create(
            owner=request.user,
            api_key_id=request.auth.pk if request.auth else None,
            upload=data["file"],
            password=data["password"],
            pages=data["pages"].strip(),
            layout=data["layout"],
        )
        job = _waited(job, wait_s=wait)
        return Response(render_pdf2text(job, request=request), status=_created_status(job))


class Pdf2TextDetailApi(APIView):
    @extend_schema(
        operation_id="pdf2text_retrieve",
        tags=["text"],
        parameters=[WAIT_PARAMETER],
        responses=Pdf2TextDetailOutputSerializer,
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.pdf2text_job_get(owner=request.user, job_id=job_id)
        job = _waited(text_job_fail_if_stale(job=job), wait_s=_wait_seconds(request))
        return Response(render_pdf2text(job, request=request))


class Pdf2TextFileApi(APIView):
    @extend_schema(
        operation_id="pdf2text_file",
        tags=["text"],
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, "The uploaded PDF.")},
    )
    def get(self, request: Request, job_id: str) -> FileResponse:
        job = selectors.pdf2text_job_get(owner=request.user, job_id=job_id)
        return _file_response(job, content_type="application/pdf")


class SummarizationListCreateApi(APIView):
    @extend_schema(
        operation_id="summarization_list",
        tags=["text"],
        parameters=PAGE_PARAMETERS,
        responses=SummarizationListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        params = page_params(request.query_params)
        text_jobs_fail_stale()
        jobs, has_more = paginate_newest_first(selectors.summarization_job_list(owner=request.user), **params)
        return Response(
            list_body(jobs, has_more=has_more, render=lambda job: render_summarization(job, request=request))
        )

    @extend_schema(
        operation_id="summarization_create",
        tags=["text"],
        parameters=[WAIT_PARAMETER],
        request={
            "multipart/form-data": SummarizationFileInputSerializer,
            "application/json": SummarizationTextInputSerializer,
        },
        responses={201: SummarizationOutputSerializer, 202: SummarizationOutputSerializer},
        description="Summarise a PDF, a .txt/.md file or text, map-reduce style when it is longer than the "
        "model's input. 201 when already finished, 202 while queued or running.",
    )
    def post(self, request: Request) -> Response:
        _reject_oversized_body(request, max_bytes=settings.SUMMARIZATION_MAX_BYTES)
        wait = _wait_seconds(request)
        serializer = SummarizationCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        job = summarization.summarization_create(
            owner=request.user,
            api_key_id=request.auth.pk if request.auth else None,
            upload=data.get("file"),
            text=data.get("text"),
            model=data.get("model"),
            max_length=data.get("max_length"),
            language="" if data["language"] == "auto" else data["language"],
            password=data["password"],
        )
        job = _waited(job, wait_s=wait)
        return Response(render_summarization(job, request=request), status=_created_status(job))


class SummarizationDetailApi(APIView):
    @extend_schema(
        operation_id="summarization_retrieve",
        tags=["text"],
        parameters=[WAIT_PARAMETER],
        responses=SummarizationOutputSerializer,
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.summarization_job_get(owner=request.user, job_id=job_id)
        job = _waited(text_job_fail_if_stale(job=job), wait_s=_wait_seconds(request))
        return Response(render_summarization(job, request=request))


class SummarizationFileApi(APIView):
    @extend_schema(
        operation_id="summarization_file",
        tags=["text"],
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, "The uploaded file.")},
    )
    def get(self, request: Request, job_id: str) -> FileResponse:
        job = selectors.summarization_job_get(owner=request.user, job_id=job_id)
        content_type = "application/pdf" if job.source == SummarizationJob.Source.PDF else "text/plain"
        return _file_response(job, content_type=content_type)
