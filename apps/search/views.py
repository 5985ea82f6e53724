from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.search.serializers import SearchRequestSerializer
from apps.search.services import web_search


class SearchApi(APIView):
    @extend_schema(
        operation_id="search",
        tags=["search"],
        request=SearchRequestSerializer,
        responses=OpenApiResponse(description="{total_size, results: [{title, url, snippet, source}]}"),
    )
    def post(self, request: Request) -> Response:
        serializer = SearchRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        response = web_search(
            user=request.user, query=data["query"], top_k=data["top_k"], providers=data.get("providers")
        )
        results = [result.to_dict() for result in response.results]
        return Response({"total_size": len(results), "results": results, "providers": response.providers})
