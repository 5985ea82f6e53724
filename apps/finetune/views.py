"""OpenAI's ``/v1/files`` and ``/v1/fine_tuning/jobs``, and TigerBot's ``/v1/finetunes``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Model, QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.chat.serializers import TigerBotChatSerializer
from apps.core.caller import request_user
from apps.core.negotiation import IgnoreAcceptHeader
from apps.core.pagination import PageParamsSerializer, page_params, paginate_newest_first
from apps.core.serializers import PageSerializer, page_of
from apps.finetune import selectors
from apps.finetune.chat import chat_with_fine_tuned, job_and_model
from apps.finetune.models import FineTuneJob, TrainingFile
from apps.finetune.responses import (
    FileDeletedSerializer,
    FileObjectPageSerializer,
    FileObjectSerializer,
    FinetuneChatSerializer,
    FinetuneDetailSerializer,
    FinetunePageSerializer,
    FinetuneSerializer,
    FinetuneServiceSerializer,
    FineTuningJobCheckpointPageSerializer,
    FineTuningJobEventPageSerializer,
    FineTuningJobPageSerializer,
    FineTuningJobSerializer,
    service_status,
)
from apps.finetune.serializers import FileUploadSerializer, OpenAIJobCreateSerializer, TigerBotFinetuneCreateSerializer
from apps.finetune.services.deployment import fine_tuned_model_set_online
from apps.finetune.services.jobs import finetune_job_cancel, finetune_job_create, finetune_job_resume
from apps.finetune.services.training_files import training_file_create, training_file_delete

TAGS = ["fine-tuning"]
# A download answers with the media type its file name suggests (training data is JSONL, JSON or CSV).
_FILE_BYTES = {
    (200, media_type): OpenApiResponse(OpenApiTypes.BINARY, "The file's bytes.")
    for media_type in ("application/octet-stream", "application/json", "text/csv", "text/plain")
}


def valid(serializer_class: type[serializers.Serializer], data: object) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _page(request: Request, queryset: QuerySet[Any], page_serializer: type[PageSerializer]) -> Response:
    items: list[Model]
    items, has_more = paginate_newest_first(queryset, **page_params(request.query_params))
    return Response(page_serializer(page_of(items, has_more=has_more)).data)


def _current_job(request: Request, job_id: str) -> FineTuneJob:
    return selectors.finetune_job_get(owner=request_user(request), job_id=job_id)


def _schema(operation_id: str, *, request: Any, responses: Any) -> Any:
    return extend_schema(operation_id=operation_id, tags=TAGS, request=request, responses=responses)


def _list_schema(operation_id: str, page_serializer: type[PageSerializer]) -> Any:
    return extend_schema(
        operation_id=operation_id, tags=TAGS, parameters=[PageParamsSerializer], responses=page_serializer
    )


def _job_action_api(
    name: str, *, operation_id: str, act: Callable[..., FineTuneJob], shape: type[serializers.Serializer]
) -> type[APIView]:
    """``POST .../{job_id}/<action>``: the caller's job after ``act``, in the dialect's ``shape``."""

    class JobActionApi(APIView):
        @extend_schema(operation_id=operation_id, tags=TAGS, request=None, responses=shape)
        def post(self, request: Request, job_id: str) -> Response:
            job = act(job=selectors.finetune_job_get(owner=request_user(request), job_id=job_id))
            return Response(shape(job).data)

    JobActionApi.__name__ = JobActionApi.__qualname__ = name
    return JobActionApi


def _job_create(
    data: dict[str, Any], *, owner: User, training_file: TrainingFile, validation_file: TrainingFile | None
) -> FineTuneJob:
    """A job from the fields of either create endpoint (OpenAI's takes a ``seed``, TigerBot's a ``name``)."""
    return finetune_job_create(
        owner=owner,
        training_file=training_file,
        validation_file=validation_file,
        model=data.get("model"),
        method=data["method"],
        hyperparameters=data["hyperparameters"],
        suffix=data.get("suffix") or "",
        seed=data.get("seed"),
        name=data.get("name", ""),
    )


# --- OpenAI: /v1/files ----------------------------------------------------------------------------------


class FileListCreateApi(APIView):
    @_list_schema("files_list", FileObjectPageSerializer)
    def get(self, request: Request) -> Response:
        return _page(request, selectors.training_file_list(owner=request_user(request)), FileObjectPageSerializer)

    @_schema(
        "files_create", request={"multipart/form-data": FileUploadSerializer}, responses={201: FileObjectSerializer}
    )
    def post(self, request: Request) -> Response:
        data = valid(FileUploadSerializer, request.data)
        training_file = training_file_create(
            owner=request_user(request),
            upload=data["file"],
            purpose=data["purpose"],
            skip_invalid_records=data["skip_invalid_records"],
        )
        return Response(FileObjectSerializer(training_file).data, status=status.HTTP_201_CREATED)


class FileDetailApi(APIView):
    @extend_schema(operation_id="files_retrieve", tags=TAGS, responses=FileObjectSerializer)
    def get(self, request: Request, file_id: str) -> Response:
        training_file = selectors.training_file_get(owner=request_user(request), file_id=file_id)
        return Response(FileObjectSerializer(training_file).data)

    @extend_schema(operation_id="files_delete", tags=TAGS, responses={200: FileDeletedSerializer})
    def delete(self, request: Request, file_id: str) -> Response:
        training_file = selectors.training_file_get(owner=request_user(request), file_id=file_id)
        training_file_delete(training_file=training_file)
        return Response(FileDeletedSerializer({"id": file_id, "deleted": True}).data)


class FileContentApi(APIView):
    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(operation_id="files_content", tags=TAGS, responses=_FILE_BYTES)
    def get(self, request: Request, file_id: str) -> FileResponse:
        training_file = selectors.training_file_get(owner=request_user(request), file_id=file_id)
        return FileResponse(training_file.file.open("rb"), as_attachment=True, filename=training_file.filename)


# --- OpenAI: /v1/fine_tuning/jobs -----------------------------------------------------------------------


class JobListCreateApi(APIView):
    @_list_schema("fine_tuning_jobs_list", FineTuningJobPageSerializer)
    def get(self, request: Request) -> Response:
        return _page(request, selectors.finetune_job_list(owner=request_user(request)), FineTuningJobPageSerializer)

    @_schema("fine_tuning_jobs_create", request=OpenAIJobCreateSerializer, responses={200: FineTuningJobSerializer})
    def post(self, request: Request) -> Response:
        data = valid(OpenAIJobCreateSerializer, request.data)
        owner = request_user(request)
        training_file = selectors.training_file_get(owner=owner, file_id=data["training_file"], param="training_file")
        validation_file = (
            selectors.training_file_get(owner=owner, file_id=data["validation_file"], param="validation_file")
            if data.get("validation_file")
            else None
        )
        job = _job_create(data, owner=owner, training_file=training_file, validation_file=validation_file)
        return Response(FineTuningJobSerializer(job).data)


class JobDetailApi(APIView):
    @extend_schema(operation_id="fine_tuning_jobs_retrieve", tags=TAGS, responses=FineTuningJobSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        return Response(FineTuningJobSerializer(_current_job(request, job_id)).data)


JobCancelApi = _job_action_api(
    "JobCancelApi", operation_id="fine_tuning_jobs_cancel", act=finetune_job_cancel, shape=FineTuningJobSerializer
)


class JobEventsApi(APIView):
    @_list_schema("fine_tuning_jobs_events", FineTuningJobEventPageSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.finetune_job_get(owner=request_user(request), job_id=job_id)
        return _page(request, selectors.finetune_event_list(job=job), FineTuningJobEventPageSerializer)


class JobCheckpointsApi(APIView):
    @_list_schema("fine_tuning_jobs_checkpoints", FineTuningJobCheckpointPageSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.finetune_job_get(owner=request_user(request), job_id=job_id)
        return _page(request, selectors.finetune_checkpoint_list(job=job), FineTuningJobCheckpointPageSerializer)


# --- TigerBot: /v1/finetunes ----------------------------------------------------------------------------


class FinetuneListCreateApi(APIView):
    @_list_schema("finetunes_list", FinetunePageSerializer)
    def get(self, request: Request) -> Response:
        return _page(request, selectors.finetune_job_list(owner=request_user(request)), FinetunePageSerializer)

    @_schema(
        "finetunes_create",
        request={"multipart/form-data": TigerBotFinetuneCreateSerializer},
        responses={201: FinetuneSerializer},
    )
    def post(self, request: Request) -> Response:
        data = valid(TigerBotFinetuneCreateSerializer, request.data)
        owner = request_user(request)
        skip_invalid_records = data["skip_invalid_records"]
        training_file = training_file_create(
            owner=owner, upload=data["file"], skip_invalid_records=skip_invalid_records
        )
        validation_file = (
            training_file_create(owner=owner, upload=data["validation_file"], skip_invalid_records=skip_invalid_records)
            if data.get("validation_file")
            else None
        )
        job = _job_create(data, owner=owner, training_file=training_file, validation_file=validation_file)
        return Response(FinetuneSerializer(job).data, status=status.HTTP_201_CREATED)


class FinetuneDetailApi(APIView):
    @extend_schema(operation_id="finetunes_retrieve", tags=TAGS, responses=FinetuneDetailSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        return Response(FinetuneDetailSerializer(_current_job(request, job_id)).data)


class FinetuneOnlineApi(APIView):
    online = True

    @extend_schema(operation_id="finetunes_online", tags=TAGS, request=None, responses=FinetuneServiceSerializer)
    def post(self, request: Request, job_id: str) -> Response:
        job, model = job_and_model(owner=request_user(request), job_id=job_id)
        model = fine_tuned_model_set_online(model=model, online=self.online)
        body = {"finetune_id": job.id, "service_status": service_status(model), "available": model.online}
        return Response(FinetuneServiceSerializer(body).data)


class FinetuneOfflineApi(FinetuneOnlineApi):
    online = False

    @extend_schema(operation_id="finetunes_offline", tags=TAGS, request=None, responses=FinetuneServiceSerializer)
    def post(self, request: Request, job_id: str) -> Response:
        return super().post(request, job_id)


FinetuneCancelApi = _job_action_api(
    "FinetuneCancelApi", operation_id="finetunes_cancel", act=finetune_job_cancel, shape=FinetuneDetailSerializer
)
FinetuneResumeApi = _job_action_api(
    "FinetuneResumeApi", operation_id="finetunes_resume", act=finetune_job_resume, shape=FinetuneDetailSerializer
)


class FinetuneChatApi(APIView):
    """Chat with a fine-tuned model in the TigerBot dialect (query, session and the sampling parameters)."""

    @extend_schema(
        operation_id="finetunes_chat", tags=TAGS, request=TigerBotChatSerializer, responses=FinetuneChatSerializer
    )
    def post(self, request: Request, job_id: str) -> Response:
        return Response(FinetuneChatSerializer(chat_with_fine_tuned(request, job_id=job_id, body=request.data)).data)
