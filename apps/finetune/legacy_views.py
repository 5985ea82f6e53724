"""TigerBot's legacy ``/bot-service/ft/*``: the same services, answered in the ``{code, msg, data}`` envelope."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.caller import request_user
from apps.core.legacy import LegacyApi, legacy_ok
from apps.core.schema import legacy_envelope
from apps.finetune import selectors
from apps.finetune.chat import chat_with_fine_tuned, job_and_model
from apps.finetune.responses import (
    LegacyCallResultSerializer,
    LegacyFinetuneListSerializer,
    LegacyServiceSerializer,
    LegacyStartedSerializer,
    LegacyUploadedSerializer,
    service_status,
)
from apps.finetune.serializers import (
    LegacyCallSerializer,
    LegacyFtIdSerializer,
    LegacyStartTrainSerializer,
    LegacyUploadSerializer,
)
from apps.finetune.services.deployment import fine_tuned_model_set_online
from apps.finetune.services.jobs import finetune_job_create
from apps.finetune.services.training_files import training_file_create
from apps.finetune.views import valid

LEGACY_LIST_SIZE = 100


def _schema(operation_id: str, *, request: Any, data: type[serializers.Serializer]) -> Any:
    return extend_schema(operation_id=operation_id, tags=["legacy"], request=request, responses=legacy_envelope(data))


class LegacyUploadTrainDataApi(LegacyApi):
    @_schema("legacy_ft_upload", request={"multipart/form-data": LegacyUploadSerializer}, data=LegacyUploadedSerializer)
    def post(self, request: Request) -> Response:
        data = valid(LegacyUploadSerializer, request.data)
        training_file = training_file_create(
            owner=request_user(request), upload=data["file"], skip_invalid_records=data["skip_invalid_records"]
        )
        return legacy_ok(LegacyUploadedSerializer(training_file).data)


class LegacyStartTrainApi(LegacyApi):
    @_schema("legacy_ft_start", request=LegacyStartTrainSerializer, data=LegacyStartedSerializer)
    def post(self, request: Request) -> Response:
        data = valid(LegacyStartTrainSerializer, request.data)
        owner = request_user(request)
        job = finetune_job_create(
            owner=owner,
            training_file=selectors.training_file_get(owner=owner, file_id=data["fileId"]),
            model=data.get("model"),
            method=data["method"],
            hyperparameters=data["hyperparameters"],
            name=data["name"],
        )
        return legacy_ok(LegacyStartedSerializer(job).data)


class LegacyCallApi(LegacyApi):
    @_schema("legacy_ft_call", request=LegacyCallSerializer, data=LegacyCallResultSerializer)
    def post(self, request: Request) -> Response:
        data = valid(LegacyCallSerializer, request.data)
        result = chat_with_fine_tuned(request, job_id=data["ftId"], body={"query": data["text"]})
        return legacy_ok(LegacyCallResultSerializer({"result": [result.text]}).data)


class LegacyOnlineApi(LegacyApi):
    online = True

    @_schema("legacy_ft_online", request=LegacyFtIdSerializer, data=LegacyServiceSerializer)
    def post(self, request: Request) -> Response:
        data = valid(LegacyFtIdSerializer, request.data)
        job, model = job_and_model(owner=request_user(request), job_id=data["ftId"])
        model = fine_tuned_model_set_online(model=model, online=self.online)
        return legacy_ok(LegacyServiceSerializer({"ftId": job.id, "serviceStatus": service_status(model)}).data)


class LegacyOfflineApi(LegacyOnlineApi):
    online = False

    @_schema("legacy_ft_offline", request=LegacyFtIdSerializer, data=LegacyServiceSerializer)
    def post(self, request: Request) -> Response:
        return super().post(request)


class LegacyListApi(LegacyApi):
    @_schema("legacy_ft_list", request=None, data=LegacyFinetuneListSerializer)
    def post(self, request: Request) -> Response:
        jobs = selectors.finetune_job_list(owner=request_user(request))[:LEGACY_LIST_SIZE]
        return legacy_ok(LegacyFinetuneListSerializer({"list": jobs}).data)
