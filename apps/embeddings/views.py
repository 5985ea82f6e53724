from __future__ import annotations

import time

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.caller import request_user
from apps.embeddings.protocol import CreateEmbeddingResponse
from apps.embeddings.responses import embeddings_response
from apps.embeddings.serializers import EmbeddingRequestSerializer
from apps.usage.services import usage_record


class EmbeddingsApi(APIView):
    @extend_schema(
        operation_id="embeddings_create",
        tags=["embeddings"],
        request=EmbeddingRequestSerializer,
        responses={200: CreateEmbeddingResponse},
    )
    def post(self, request: Request) -> Response:
        started = time.monotonic()
        user = request_user(request)
        body, prompt_tokens, model = embeddings_response(user=user, body=request.data)
        usage_record(
            owner_id=user.pk,
            api_key_id=request.auth.pk,
            route=request.path,
            model=model,
            prompt_tokens=prompt_tokens,
            latency_ms=int((time.monotonic() - started) * 1000),
        )
        return Response(body)
