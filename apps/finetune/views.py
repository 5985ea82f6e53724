from __future__ import annotations

import time

from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.chat.dialects import detect_dialect, parse_tigerbot, tigerbot_completion
from apps.chat.serializers import TigerBotChatSerializer
from apps.chat.services import chat_complete
from apps.core.legacy import LegacyApi, legacy_ok
from apps.core.negotiation import IgnoreAcceptHeader
from apps.core.pagination import list_body, page_params, paginate_newest_first
from apps.finetune import selectors, services
from apps.finetune.models import FineTunedModel, FineTuneJob
from apps.finetune.serializers import (
    FileUploadSerializer,
    LegacyCallSerializer,
    LegacyFtIdSerializer,
    LegacyStartTrainSerializer,
    LegacyUploadSerializer,
    OpenAIJobCreateSerializer,
    TigerBotFinetuneCreateSerializer,
    render_checkpoint,
    render_event,
    render_file,
    render_openai_job,
    render_tigerbot_job,
    service_status,
)
from apps.usage.recording import request_usage_record
from workers.runtime.specs import GenerationResult

JSON_DOC = OpenApiResponse(description="JSON object (see the README for the shape)")


def _valid(serializer_class: type, data: object) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _page(request: Request, queryset, render) -> Response:
    items, has_more = paginate_newest_first(queryset, **page_params(request.query_params))
    return Response(list_body(items, has_more=has_more, render=render))


# --- OpenAI: /v1/files ----------------------------------------------------------------------------------


class FileListCreateApi(APIView):
    @extend_schema(operation_id="files_list", tags=["fine-tuning"], responses=JSON_DOC)
    def get(self, request: Request) -> Response:
        return _page(request, selectors.training_file_list(owner=request.user), render_file)

    @extend_schema(
        operation_id="files_create",
        tags=["fine-tuning"],
        request={"multipart/form-data": FileUploadSerializer},
        responses={201: JSON_DOC},
    )
    def post(self, request: Request) -> Response:
        data = _valid(FileUploadSerializer, request.data)
        training_file = services.training_file_create(
            owner=request.user,
            upload=data["file"],
            purpose=data["purpose"],
            skip_invalid_records=data["skip_invalid_records"],
        )
        return Response(render_file(training_file), status=status.HTTP_201_CREATED)


class FileDetailApi(APIView):
    @extend_schema(operation_id="files_retrieve", tags=["fine-tuning"], responses=JSON_DOC)
    def get(self, request: Request, file_id: str) -> Response:
        return Response(render_file(selectors.training_file_get(owner=request.user, file_id=file_id)))

    @extend_schema(operation_id="files_delete", tags=["fine-tuning"], responses=JSON_DOC)
    def delete(self, request: Request, file_id: str) -> Response:
        training_file = selectors.training_file_get(owner=request.user, file_id=file_id)
        services.training_file_delete(training_file=training_file)
        return Response({"id": file_id, "object": "file", "deleted": True})


class FileContentApi(APIView):
    content_negotiation_class = IgnoreAcceptHeader

    @extend_schema(
        operation_id="files_content", tags=["fine-tuning"], responses=OpenApiResponse(description="The file's bytes")
    )
    def get(self, request: Request, file_id: str) -> FileResponse:
        training_file = selectors.training_file_get(owner=request.user, file_id=file_id)
        return FileResponse(training_file.file.open("rb"), as_attachment=True, filename=training_file.filename)


# --- OpenAI: /v1/fine_tuning/jobs -----------------------------------------------------------------------


class JobListCreateApi(APIView):
    @extend_schema(operation_id="fine_tuning_jobs_list", tags=["fine-tuning"], responses=JSON_DOC)
    def get(self, request: Request) -> Response:
        services.fail_stale_jobs()
        return _page(request, selectors.finetune_job_list(owner=request.user), render_openai_job)

    @extend_schema(
        operation_id="fine_tuning_jobs_create",
        tags=["fine-tuning"],
        request=OpenAIJobCreateSerializer,
        responses={200: JSON_DOC},
    )
    def post(self, request: Request) -> Response:
        data = _valid(OpenAIJobCreateSerializer, request.data)
        training_file = selectors.training_file_get(owner=request.user, file_id=data["training_file"])
        validation_file = (
            selectors.training_file_get(owner=request.user, file_id=data["validation_file"])
            if data.get("validation_file")
            else None
        )
        job = services.finetune_job_create(
            owner=request.user,
            training_file=training_file,
            validation_file=validation_file,
            model=data["model"],
            method=data["method"],
            hyperparameters=data["hyperparameters"],
            suffix=data.get("suffix") or "",
            seed=data.get("seed"),
        )
        return Response(render_openai_job(job))


class JobDetailApi(APIView):
    @extend_schema(operation_id="fine_tuning_jobs_retrieve", tags=["fine-tuning"], responses=JSON_DOC)
    def get(self, request: Request, job_id: str) -> Response:
        services.fail_stale_jobs()
        return Response(render_openai_job(selectors.finetune_job_get(owner=request.user, job_id=job_id)))


class JobCancelApi(APIView):
    @extend_schema(operation_id="fine_tuning_jobs_cancel", tags=["fine-tuning"], request=None, responses=JSON_DOC)
    def post(self, request: Request, job_id: str) -> Response:
        job = services.finetune_job_cancel(job=selectors.finetune_job_get(owner=request.user, job_id=job_id))
        return Response(render_openai_job(job))


class JobEventsApi(APIView):
    @extend_schema(operation_id="fine_tuning_jobs_events", tags=["fine-tuning"], responses=JSON_DOC)
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.finetune_job_get(owner=request.user, job_id=job_id)
        return _page(request, selectors.finetune_event_list(job=job), render_event)


class JobCheckpointsApi(APIView):
    @extend_schema(operation_id="fine_tuning_jobs_checkpoints", tags=["fine-tuning"], responses=JSON_DOC)
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.finetune_job_get(owner=request.user, job_id=job_id)
        return _page(request, selectors.finetune_checkpoint_list(job=job), render_checkpoint)


# --- TigerBot: /v1/finetunes ----------------------------------------------------------------------------


class FinetuneListCreateApi(APIView):
    @extend_schema(operation_id="finetunes_list", tags=["fine-tuning"], responses=JSON_DOC)
    def get(self, request: Request) -> Response:
        services.fail_stale_jobs()
        return _page(request, selectors.finetune_job_list(owner=request.user), render_tigerbot_job)

    @extend_schema(
        operation_id="finetunes_create",
        tags=["fine-tuning"],
        request={"multipart/form-data": TigerBotFinetuneCreateSerializer},
        responses={201: JSON_DOC},
    )
    def post(self, request: Request) -> Response:
        data = _valid(TigerBotFinetuneCreateSerializer, request.data)
        options = {"owner": request.user, "skip_invalid_records": data["skip_invalid_records"]}
        training_file = services.training_file_create(upload=data["file"], **options)
        validation_file = (
            services.training_file_create(upload=data["validation_file"], **options)
            if data.get("validation_file")
            else None
        )
        job = services.finetune_job_create(
            owner=request.user,
            training_file=training_file,
            validation_file=validation_file,
            model=data.get("model"),
            method=data["method"],
            hyperparameters=data["hyperparameters"],
            suffix=data["suffix"],
            name=data["name"],
        )
        return Response(render_tigerbot_job(job), status=status.HTTP_201_CREATED)


class FinetuneDetailApi(APIView):
    @extend_schema(operation_id="finetunes_retrieve", tags=["fine-tuning"], responses=JSON_DOC)
    def get(self, request: Request, job_id: str) -> Response:
        services.fail_stale_jobs()
        job = selectors.finetune_job_get(owner=request.user, job_id=job_id)
        return Response(render_tigerbot_job(job, detail=True))


def _job_model(request: Request, job_id: str) -> tuple[FineTuneJob, FineTunedModel]:
    job = selectors.finetune_job_get(owner=request.user, job_id=job_id)
    return job, selectors.fine_tuned_model_of(job=job)


class FinetuneOnlineApi(APIView):
    online = True

    @extend_schema(operation_id="finetunes_online", tags=["fine-tuning"], request=None, responses=JSON_DOC)
    def post(self, request: Request, job_id: str) -> Response:
        job, model = _job_model(request, job_id)
        model = services.fine_tuned_model_set_online(model=model, online=self.online)
        return Response({"finetune_id": job.id, "service_status": service_status(model), "available": model.online})


class FinetuneOfflineApi(FinetuneOnlineApi):
    online = False

    @extend_schema(operation_id="finetunes_offline", tags=["fine-tuning"], request=None, responses=JSON_DOC)
    def post(self, request: Request, job_id: str) -> Response:
        return super().post(request, job_id)


class FinetuneCancelApi(APIView):
    @extend_schema(operation_id="finetunes_cancel", tags=["fine-tuning"], request=None, responses=JSON_DOC)
    def post(self, request: Request, job_id: str) -> Response:
        job = services.finetune_job_cancel(job=selectors.finetune_job_get(owner=request.user, job_id=job_id))
        return Response(render_tigerbot_job(job, detail=True))


class FinetuneResumeApi(APIView):
    @extend_schema(operation_id="finetunes_resume", tags=["fine-tuning"], request=None, responses=JSON_DOC)
    def post(self, request: Request, job_id: str) -> Response:
        job = services.finetune_job_resume(job=selectors.finetune_job_get(owner=request.user, job_id=job_id))
        return Response(render_tigerbot_job(job, detail=True))


class FinetuneChatApi(APIView):
    """Chat with a fine-tuned model in the TigerBot dialect (query, session and the sampling parameters)."""

    @extend_schema(
        operation_id="finetunes_chat", tags=["fine-tuning"], request=TigerBotChatSerializer, responses=JSON_DOC
    )
    def post(self, request: Request, job_id: str) -> Response:
        return Response(tigerbot_completion(result=_chat_with_fine_tuned(request, job_id, request.data)))


def _chat_with_fine_tuned(request: Request, job_id: str, body: object) -> GenerationResult:
    """A TigerBot-dialect chat (query, session, sampling parameters) with the job's fine-tuned model."""
    _, model = _job_model(request, job_id)
    detect_dialect(body)  # a body that is not a JSON object is a 400 here too
    chat = parse_tigerbot(body)
    served = selectors.fine_tuned_model_served(model=model)
    started = time.monotonic()
    result = chat_complete(spec=served.spec, messages=chat.messages, params=chat.params_for(served.spec))
    request_usage_record(request, model=served.id, started=started, results=[result])
    return result


# --- Legacy: /bot-service/ft/* --------------------------------------------------------------------------


class LegacyUploadTrainDataApi(LegacyApi):
    @extend_schema(
        operation_id="legacy_ft_upload",
        tags=["legacy"],
        request={"multipart/form-data": LegacyUploadSerializer},
        responses=JSON_DOC,
    )
    def post(self, request: Request) -> Response:
        data = _valid(LegacyUploadSerializer, request.data)
        training_file = services.training_file_create(
            owner=request.user, upload=data["file"], skip_invalid_records=data["skip_invalid_records"]
        )
        return legacy_ok(
            {"fileId": training_file.id, "fileName": training_file.filename, "records": training_file.total}
        )


class LegacyStartTrainApi(LegacyApi):
    @extend_schema(
        operation_id="legacy_ft_start", tags=["legacy"], request=LegacyStartTrainSerializer, responses=JSON_DOC
    )
    def post(self, request: Request) -> Response:
        data = _valid(LegacyStartTrainSerializer, request.data)
        training_file = selectors.training_file_get(owner=request.user, file_id=data["fileId"])
        job = services.finetune_job_create(
            owner=request.user,
            training_file=training_file,
            model=data.get("model"),
            method=data["method"],
            hyperparameters=data["hyperparameters"],
            name=data["name"],
        )
        return legacy_ok({"ftId": job.id, "status": job.status})


class LegacyCallApi(LegacyApi):
    @extend_schema(operation_id="legacy_ft_call", tags=["legacy"], request=LegacyCallSerializer, responses=JSON_DOC)
    def post(self, request: Request) -> Response:
        data = _valid(LegacyCallSerializer, request.data)
        result = _chat_with_fine_tuned(request, data["ftId"], {"query": data["text"]})
        return legacy_ok({"result": [result.text]})


class LegacyOnlineApi(LegacyApi):
    online = True

    @extend_schema(operation_id="legacy_ft_online", tags=["legacy"], request=LegacyFtIdSerializer, responses=JSON_DOC)
    def post(self, request: Request) -> Response:
        data = _valid(LegacyFtIdSerializer, request.data)
        job, model = _job_model(request, data["ftId"])
        model = services.fine_tuned_model_set_online(model=model, online=self.online)
        return legacy_ok({"ftId": job.id, "serviceStatus": service_status(model)})


class LegacyOfflineApi(LegacyOnlineApi):
    online = False

    @extend_schema(operation_id="legacy_ft_offline", tags=["legacy"], request=LegacyFtIdSerializer, responses=JSON_DOC)
    def post(self, request: Request) -> Response:
        return super().post(request)


class LegacyListApi(LegacyApi):
    @extend_schema(operation_id="legacy_ft_list", tags=["legacy"], request=None, responses=JSON_DOC)
    def post(self, request: Request) -> Response:
        jobs = selectors.finetune_job_list(owner=request.user)[:100]
        return legacy_ok({"list": [render_tigerbot_job(job) for job in jobs]})
