"""One ``/v1/embeddings`` response from a request body, without HTTP: the view and the Batch API's
``/v1/embeddings`` lines both build their answer here."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractUser

from apps.embeddings.protocol import CreateEmbeddingResponse, Embedding, EmbeddingUsage
from apps.embeddings.serializers import EmbeddingRequestSerializer
from apps.embeddings.services import embeddings_create


def encode_embedding(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # what the openai SDK asks for by default: little-endian float32
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector


def embeddings_response(*, user: AbstractUser, body: Any) -> tuple[dict[str, Any], int, str]:
    """``(OpenAI embedding list body, prompt tokens, model name)``; raises ``DomainError`` (or DRF's
    ``ValidationError``) for input the caller got wrong."""
    serializer = EmbeddingRequestSerializer(data=body)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    result = embeddings_create(
        user=user,
        model=data.get("model"),
        texts=data["input"],
        dimensions=data.get("dimensions"),
        input_type=data.get("input_type"),
    )
    response = CreateEmbeddingResponse.model_construct(
        object="list",
        data=[
            Embedding.model_construct(
                object="embedding", index=i, embedding=encode_embedding(v, data["encoding_format"])
            )
            for i, v in enumerate(result.vectors)
        ],
        model=result.model,
        usage=EmbeddingUsage.model_construct(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens),
    ).dump()
    return response, result.prompt_tokens, result.model
