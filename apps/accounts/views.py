from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors, services
from apps.accounts.serializers import (
    ApiKeyCreatedOutputSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyListOutputSerializer,
    ApiKeyOutputSerializer,
    render_api_key,
)
from apps.core.pagination import list_body, page_params, paginate_newest_first

PAGE_PARAMETERS = [
    OpenApiParameter("after", str, description="Id of the last object of the previous page."),
    OpenApiParameter("limit", int, description="Page size, 1–100 (default 20)."),
]


class ApiKeyListCreateApi(APIView):
    @extend_schema(
        operation_id="api_keys_list",
        parameters=PAGE_PARAMETERS,
        responses=ApiKeyListOutputSerializer,
        tags=["accounts"],
    )
    def get(self, request: Request) -> Response:
        params = page_params(request.query_params)
        keys, has_more = paginate_newest_first(selectors.api_key_list(owner=request.user), **params)
        return Response(list_body(keys, has_more=has_more, render=render_api_key))

    @extend_schema(
        operation_id="api_keys_create",
        request=ApiKeyCreateInputSerializer,
        responses={201: ApiKeyCreatedOutputSerializer},
        tags=["accounts"],
    )
    def post(self, request: Request) -> Response:
        serializer = ApiKeyCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = services.api_key_create(owner=request.user, **serializer.validated_data)
        body = {**render_api_key(created.api_key), "key": created.plaintext}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    @extend_schema(operation_id="api_keys_retrieve", responses=ApiKeyOutputSerializer, tags=["accounts"])
    def get(self, request: Request, key_id: str) -> Response:
        api_key = selectors.api_key_get(owner=request.user, key_id=key_id)
        return Response(render_api_key(api_key))

    @extend_schema(operation_id="api_keys_revoke", responses=ApiKeyOutputSerializer, tags=["accounts"])
    def delete(self, request: Request, key_id: str) -> Response:
        api_key = selectors.api_key_get(owner=request.user, key_id=key_id)
        return Response(render_api_key(services.api_key_revoke(api_key=api_key)))
