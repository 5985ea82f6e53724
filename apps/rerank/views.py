from __future__ import annotations

import time

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.caller import request_user
from apps.core.ids import new_id
from apps.rerank.serializers import RerankRequestSerializer, RerankResponseSerializer
from apps.rerank.services import rerank_create
from apps.usage.services import usage_record


class RerankApi(APIView):
    @extend_schema(
        operation_id="rerank_create",
        tags=["rerank"],
        request=RerankRequestSerializer,
        responses=RerankResponseSerializer,
    )
    def post(self, request: Request) -> Response:
        started = time.monotonic()
        serializer = RerankRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        documents = data["documents"]
        reranked = rerank_create(model=data.get("model"), query=data["query"], documents=documents, top_n=data["top_n"])
        usage_record(
            owner_id=request_user(request).pk,
            api_key_id=request.auth.pk,
            route=request.path,
            model=reranked.model,
            prompt_tokens=reranked.tokens,
            latency_ms=int((time.monotonic() - started) * 1000),
        )
        results = [
            {"index": index, "relevance_score": score, "document": {"text": documents[index]}}
            if data["return_documents"]
            else {"index": index, "relevance_score": score}
            for index, score in reranked.ranking
        ]
        body = {"id": new_id("rerank"), "model": reranked.model, "results": results, "tokens": reranked.tokens}
        return Response(RerankResponseSerializer(body).data)
