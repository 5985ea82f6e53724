from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.chat.model_services import model_delete
from apps.chat.protocol import Model, ModelDeleted
from apps.chat.selectors import model_get
from apps.core.caller import request_user


class ModelDetailApi(APIView):
    """``/v1/models/{id}``; ids may hold ``:``, ``/`` and ``.`` (``ft:base:suffix:abcd1234``)."""

    @extend_schema(
        operation_id="models_retrieve",
        tags=["models"],
        description="One model the caller may use; any other id is a 404 model_not_found.",
        responses={200: Model},
    )
    def get(self, request: Request, model_id: str) -> Response:
        return Response(Model.model_validate(model_get(user=request_user(request), model_id=model_id)).dump())

    @extend_schema(
        operation_id="models_delete",
        tags=["models"],
        description="Deletes one of the caller's own fine-tuned models. A platform model is a 403 "
        "model_not_deletable; an unknown, already deleted or another tenant's model a 404.",
        responses={200: ModelDeleted},
    )
    def delete(self, request: Request, model_id: str) -> Response:
        deleted = model_delete(user=request_user(request), model_id=model_id)
        return Response(ModelDeleted.model_validate(deleted).dump())
