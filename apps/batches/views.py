from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import ApiKey
from apps.batches import selectors, services
from apps.batches.serializers import BatchCreateSerializer, BatchListSerializer, BatchSerializer
from apps.core.caller import request_user
from apps.core.pagination import PageParamsSerializer, page_params, paginate_newest_first
from apps.core.serializers import page_of


class BatchListCreateApi(APIView):
    @extend_schema(
        operation_id="batches_list", tags=["batches"], parameters=[PageParamsSerializer], responses=BatchListSerializer
    )
    def get(self, request: Request) -> Response:
        items, has_more = paginate_newest_first(
            selectors.batch_list(owner=request_user(request)), **page_params(request.query_params)
        )
        return Response(BatchListSerializer(page_of(items, has_more=has_more)).data)

    @extend_schema(
        operation_id="batches_create", tags=["batches"], request=BatchCreateSerializer, responses=BatchSerializer
    )
    def post(self, request: Request) -> Response:
        serializer = BatchCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        data = serializer.validated_data
        batch = services.batch_create(
            owner=request_user(request),
            api_key=api_key,
            input_file_id=data["input_file_id"],
            endpoint=data["endpoint"],
            completion_window=data["completion_window"],
            metadata=data["metadata"],
        )
        return Response(BatchSerializer(batch).data)


class BatchDetailApi(APIView):
    @extend_schema(operation_id="batches_retrieve", tags=["batches"], responses=BatchSerializer)
    def get(self, request: Request, batch_id: str) -> Response:
        return Response(BatchSerializer(selectors.batch_get(owner=request_user(request), batch_id=batch_id)).data)


class BatchCancelApi(APIView):
    @extend_schema(operation_id="batches_cancel", tags=["batches"], request=None, responses=BatchSerializer)
    def post(self, request: Request, batch_id: str) -> Response:
        batch = services.batch_cancel(batch=selectors.batch_get(owner=request_user(request), batch_id=batch_id))
        return Response(BatchSerializer(batch).data)
