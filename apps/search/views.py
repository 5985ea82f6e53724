from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.caller import request_user
from apps.search.serializers import SearchRequestSerializer, WebSearchResponseSerializer
from apps.search.services import web_search


class SearchApi(APIView):
    parser_classes = [JSONParser]  # a JSON body only: form fields cannot say "no providers" apart from [""]

    @extend_schema(
        operation_id="search",
        tags=["search"],
        request=SearchRequestSerializer,
        responses=WebSearchResponseSerializer,
    )
    def post(self, request: Request) -> Response:
        serializer = SearchRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        response = web_search(
            user=request_user(request), query=data["query"], top_k=data["top_k"], providers=data.get("providers")
        )
        return Response(WebSearchResponseSerializer(response).data)
