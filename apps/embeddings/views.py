from __future__ import annotations

import base64
import time

import numpy as np
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ApiError
from apps.embeddings.serializers import EmbeddingRequestSerializer
from apps.embeddings.services import embeddings_create
from apps.usage.services import usage_record


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # what the openai SDK asks for by default: little-endian float32
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector


class EmbeddingsApi(APIView):
    @extend_schema(operation_id="embeddings_create", tags=["embeddings"], request=EmbeddingRequestSerializer,
                   responses=OpenApiResponse(description="{object: 'list', data: [{object: 'embedding', index, "
                                                         "embedding}], model, usage}"))
    def post(self, request: Request) -> Response:
        serializer = EmbeddingRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        started = time.monotonic()
        result = embeddings_create(user=request.user, model=data.get("model"), texts=data["input"])
        dimension = len(result.vectors[0])
        if data.get("dimensions") not in (None, dimension):
            raise ApiError(f"{result.model} produces {dimension}-dimensional embeddings only.", param="dimensions")
        usage_record(owner_id=request.user.pk, api_key_id=request.auth.pk, route=request.path, model=result.model,
                     prompt_tokens=result.prompt_tokens, latency_ms=int((time.monotonic() - started) * 1000))
        return Response({
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": _encode(v, data["encoding_format"])}
                     for i, v in enumerate(result.vectors)],
            "model": result.model,
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        })
