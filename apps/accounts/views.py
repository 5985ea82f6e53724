from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors, services
from apps.accounts.models import ApiKey
from apps.accounts.serializers import (
    ApiKeyCreatedOutputSerializer,
    ApiKeyCreateInputSerializer,
    ApiKeyListOutputSerializer,
    ApiKeyOutputSerializer,
)
from apps.core.caller import request_user
from apps.core.pagination import PageParamsSerializer, page_params, paginate_newest_first
from apps.core.serializers import page_of


class ApiKeyListCreateApi(APIView):
    parser_classes = [JSONParser]  # a JSON body only: an empty form field would read as null

    @extend_schema(
        operation_id="api_keys_list",
        parameters=[PageParamsSerializer],
        responses=ApiKeyListOutputSerializer,
        tags=["accounts"],
    )
    def get(self, request: Request) -> Response:
        params = page_params(request.query_params)
        keys, has_more = paginate_newest_first(selectors.api_key_list(owner=request_user(request)), **params)
        return Response(ApiKeyListOutputSerializer(page_of(keys, has_more=has_more)).data)

    @extend_schema(
        operation_id="api_keys_create",
        request=ApiKeyCreateInputSerializer,
        responses={201: ApiKeyCreatedOutputSerializer},
        tags=["accounts"],
    )
    def post(self, request: Request) -> Response:
        serializer = ApiKeyCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        within = request.auth if isinstance(request.auth, ApiKey) else None
        created = services.api_key_create(owner=request_user(request), within=within, **serializer.validated_data)
        return Response(ApiKeyCreatedOutputSerializer(created).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    @extend_schema(operation_id="api_keys_retrieve", responses=ApiKeyOutputSerializer, tags=["accounts"])
    def get(self, request: Request, key_id: str) -> Response:
        api_key = selectors.api_key_get(owner=request_user(request), key_id=key_id)
        return Response(ApiKeyOutputSerializer(api_key).data)

    @extend_schema(operation_id="api_keys_revoke", responses={200: ApiKeyOutputSerializer}, tags=["accounts"])
    def delete(self, request: Request, key_id: str) -> Response:
        api_key = selectors.api_key_get(owner=request_user(request), key_id=key_id)
        return Response(ApiKeyOutputSerializer(services.api_key_revoke(api_key=api_key)).data)
