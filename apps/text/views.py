from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.caller import request_user
from apps.core.pagination import PageParamsSerializer, page_params, paginate_newest_first
from apps.core.serializers import DeletedSerializer, PageSerializer, WaitQuerySerializer, page_of
from apps.text import selectors
from apps.text.models import TextJob
from apps.text.serializers import (
    Pdf2TextCreateInputSerializer,
    Pdf2TextDeletedSerializer,
    Pdf2TextDetailOutputSerializer,
    Pdf2TextListOutputSerializer,
    SummarizationCreateInputSerializer,
    SummarizationDeletedSerializer,
    SummarizationFileInputSerializer,
    SummarizationListOutputSerializer,
    SummarizationOutputSerializer,
    SummarizationTextInputSerializer,
)
from apps.text.services import pdf2text, summarization
from apps.text.services.jobs import file_too_large, text_job_delete
from workers.errors import NotFound, PayloadTooLarge

J = TypeVar("J", bound=TextJob)

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


def _create_input(
    request: Request, *, serializer_class: type[serializers.Serializer], max_bytes: int
) -> tuple[dict[str, Any], float]:
    """A create request's validated body and its ``wait``; an oversized body is refused before it is read."""
    _reject_oversized_body(request, max_bytes=max_bytes)
    wait = _wait_seconds(request)
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data, wait


def _waited(job: J, *, wait_s: float) -> J:
    return selectors.text_job_wait(job=job, timeout_s=wait_s) if wait_s and not job.is_finished else job


def _created_response(
    request: Request, job: TextJob, *, serializer_class: type[serializers.Serializer], wait_s: float
) -> Response:
    job = _waited(job, wait_s=wait_s)
    code = status.HTTP_201_CREATED if job.is_finished else status.HTTP_202_ACCEPTED
    return Response(serializer_class(job, context={"request": request}).data, status=code)


def _detail_response(request: Request, job: TextJob, *, serializer_class: type[serializers.Serializer]) -> Response:
    job = _waited(job, wait_s=_wait_seconds(request))
    return Response(serializer_class(job, context={"request": request}).data)


def _list_response(request: Request, jobs: QuerySet[J], *, serializer_class: type[PageSerializer]) -> Response:
    page, has_more = paginate_newest_first(jobs, **page_params(request.query_params))
    return Response(serializer_class(page_of(page, has_more=has_more), context={"request": request}).data)


_DELETE_DESCRIPTION = (
    "Delete a finished job with its uploaded file and its result. A job still queued or running answers 409 "
    "(`job_not_finished`): wait until it finishes, then delete it."
)


# A view of one of the caller's jobs of one kind, found by that kind's selector ``job_get``. No docstrings on these
# bases: drf-spectacular would publish them as the operations' descriptions.
class _TextJobApi(APIView):
    job_get: ClassVar[Callable[..., TextJob]]

    def caller_job(self, request: Request, job_id: str) -> TextJob:
        return self.job_get(owner=request_user(request), job_id=job_id)


class _TextJobDetailApi(_TextJobApi):
    output_serializer: ClassVar[type[serializers.Serializer]]
    deleted_serializer: ClassVar[type[DeletedSerializer]]

    @extend_schema(tags=["text"], parameters=[WaitQuerySerializer])
    def get(self, request: Request, job_id: str) -> Response:
        return _detail_response(request, self.caller_job(request, job_id), serializer_class=self.output_serializer)

    @extend_schema(tags=["text"], description=_DELETE_DESCRIPTION)
    def delete(self, request: Request, job_id: str) -> Response:
        text_job_delete(job=self.caller_job(request, job_id))
        return Response(self.deleted_serializer({"id": job_id, "deleted": True}).data)


class _TextJobFileApi(_TextJobApi):
    @extend_schema(tags=["text"])
    def get(self, request: Request, job_id: str) -> FileResponse:
        job = self.caller_job(request, job_id)
        name = job.file.name
        if not name or not default_storage.exists(name):
            raise NotFound("The file of this job is no longer stored.", code="file_not_found")
        return FileResponse(default_storage.open(name, "rb"), content_type=job.file_content_type, filename=job.filename)


class Pdf2TextListCreateApi(APIView):
    @extend_schema(
        operation_id="pdf2text_list",
        tags=["text"],
        parameters=[PageParamsSerializer],
        responses=Pdf2TextListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        return _list_response(
            request,
            selectors.pdf2text_job_list(owner=request_user(request)),
            serializer_class=Pdf2TextListOutputSerializer,
        )

    @extend_schema(
        operation_id="pdf2text_create",
        tags=["text"],
        parameters=[WaitQuerySerializer],
        request={"multipart/form-data": Pdf2TextCreateInputSerializer},
        responses={201: Pdf2TextDetailOutputSerializer, 202: Pdf2TextDetailOutputSerializer},
        description="Upload a PDF for text extraction. 201 when the job has already finished (no broker, or "
        "`wait`), 202 while it is queued or running: poll `GET /v1/pdf2text/{id}`.",
    )
    def post(self, request: Request) -> Response:
        data, wait = _create_input(
            request, serializer_class=Pdf2TextCreateInputSerializer, max_bytes=settings.PDF2TEXT_MAX_BYTES
        )
        job = pdf2text.pdf2text_create(
            owner=request_user(request),
            api_key_id=request.auth.pk if request.auth else None,
            upload=data["file"],
            password=data["password"],
            pages=data["pages"].strip(),
            layout=data["layout"],
        )
        return _created_response(request, job, serializer_class=Pdf2TextDetailOutputSerializer, wait_s=wait)


@extend_schema_view(
    get=extend_schema(operation_id="pdf2text_retrieve", responses=Pdf2TextDetailOutputSerializer),
    delete=extend_schema(operation_id="pdf2text_delete", responses={200: Pdf2TextDeletedSerializer}),
)
class Pdf2TextDetailApi(_TextJobDetailApi):
    job_get = staticmethod(selectors.pdf2text_job_get)
    output_serializer = Pdf2TextDetailOutputSerializer
    deleted_serializer = Pdf2TextDeletedSerializer


@extend_schema_view(
    get=extend_schema(
        operation_id="pdf2text_file",
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, "The uploaded PDF.")},
    )
)
class Pdf2TextFileApi(_TextJobFileApi):
    job_get = staticmethod(selectors.pdf2text_job_get)


class SummarizationListCreateApi(APIView):
    @extend_schema(
        operation_id="summarization_list",
        tags=["text"],
        parameters=[PageParamsSerializer],
        responses=SummarizationListOutputSerializer,
    )
    def get(self, request: Request) -> Response:
        jobs = selectors.summarization_job_list(owner=request_user(request))
        return _list_response(request, jobs, serializer_class=SummarizationListOutputSerializer)

    @extend_schema(
        operation_id="summarization_create",
        tags=["text"],
        parameters=[WaitQuerySerializer],
        request={
            "multipart/form-data": SummarizationFileInputSerializer,
            "application/json": SummarizationTextInputSerializer,
        },
        responses={201: SummarizationOutputSerializer, 202: SummarizationOutputSerializer},
        description="Summarise a PDF, a .txt/.md file or text, map-reduce style when it is longer than the "
        "model's input. 201 when already finished, 202 while queued or running.",
    )
    def post(self, request: Request) -> Response:
        data, wait = _create_input(
            request, serializer_class=SummarizationCreateInputSerializer, max_bytes=settings.SUMMARIZATION_MAX_BYTES
        )
        job = summarization.summarization_create(
            owner=request_user(request),
            api_key_id=request.auth.pk if request.auth else None,
            upload=data.get("file"),
            text=data.get("text"),
            model=data.get("model"),
            max_length=data.get("max_length"),
            language="" if data["language"] == "auto" else data["language"],
            password=data["password"],
        )
        return _created_response(request, job, serializer_class=SummarizationOutputSerializer, wait_s=wait)


@extend_schema_view(
    get=extend_schema(operation_id="summarization_retrieve", responses=SummarizationOutputSerializer),
    delete=extend_schema(operation_id="summarization_delete", responses={200: SummarizationDeletedSerializer}),
)
class SummarizationDetailApi(_TextJobDetailApi):
    job_get = staticmethod(selectors.summarization_job_get)
    output_serializer = SummarizationOutputSerializer
    deleted_serializer = SummarizationDeletedSerializer


@extend_schema_view(
    get=extend_schema(
        operation_id="summarization_file",
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, "The uploaded file.")},
    )
)
class SummarizationFileApi(_TextJobFileApi):
    job_get = staticmethod(selectors.summarization_job_get)
