from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.batches import selectors, services
from apps.batches.serializers import BatchCreateSerializer, BatchListSerializer, BatchSerializer, render_batch
from apps.core.pagination import PageParamsSerializer, list_body, page_params, paginate_newest_first


class BatchListCreateApi(APIView):
    @extend_schema(
        operation_id="batches_list", tags=["batches"], parameters=[PageParamsSerializer], responses=BatchListSerializer
    )
    def get(self, request: Request) -> Response:
        services.batch_resume_stale()
        items, has_more = paginate_newest_first(
            selectors.batch_list(owner=request.user), **page_params(request.query_params)
        )
        return Response(list_body(items, has_more=has_more, render=render_batch))

    @extend_schema(
        operation_id="batches_create", tags=["batches"], request=BatchCreateSerializer, responses=BatchSerializer
    )
    def post(self, request: Request) -> Response:
        serializer = BatchCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        batch = services.batch_create(owner=request.user, api_key=request.auth, **serializer.validated_data)
        return Response(render_batch(batch))


class BatchDetailApi(APIView):
    @extend_schema(operation_id="batches_retrieve", tags=["batches"], responses=BatchSerializer)
    def get(self, request: Request, batch_id: str) -> Response:
        services.batch_resume_stale()
        return Response(render_batch(selectors.batch_get(owner=request.user, batch_id=batch_id)))


class BatchCancelApi(APIView):
    @extend_schema(operation_id="batches_cancel", tags=["batches"], request=None, responses=BatchSerializer)
    def post(self, request: Request, batch_id: str) -> Response:
        batch = services.batch_cancel(batch=selectors.batch_get(owner=request.user, batch_id=batch_id))
        return Response(render_batch(batch))
