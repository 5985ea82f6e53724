from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.chat.selectors import model_endpoint_list
from apps.chat.serializers import ModelListSerializer


class ModelListApi(APIView):
    @extend_schema(operation_id="models_list", responses=ModelListSerializer, tags=["models"])
    def get(self, request: Request) -> Response:
        data = [
            {"id": m.name, "object": "model", "created": int(m.created_at.timestamp()), "owned_by": m.owned_by}
            for m in model_endpoint_list(user=request.user)
        ]
        return Response({"object": "list", "data": data})
