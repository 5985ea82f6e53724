from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.chat.model_services import model_delete
from apps.chat.selectors import model_get


class ModelDetailApi(APIView):
    """``/v1/models/{id}``; ids may hold ``:``, ``/`` and ``.`` (``ft:base:suffix:abcd1234``)."""

    @extend_schema(
        operation_id="models_retrieve",
        tags=["models"],
        responses={
            200: OpenApiResponse(description="OpenAI model object: {id, object: 'model', created, owned_by}"),
            404: OpenApiResponse(description="model_not_found"),
        },
    )
    def get(self, request: Request, model_id: str) -> Response:
        return Response(model_get(user=request.user, model_id=model_id))

    @extend_schema(
        operation_id="models_delete",
        tags=["models"],
        responses={
            200: OpenApiResponse(
                description="{id, object: 'model', deleted: true}. Only the caller's own fine-tuned models."
            ),
            403: OpenApiResponse(description="a platform model (model_not_deletable)"),
            404: OpenApiResponse(description="unknown, already deleted or another tenant's"),
        },
    )
    def delete(self, request: Request, model_id: str) -> Response:
        return Response(model_delete(user=request.user, model_id=model_id))
