"""Response body of ``/v1/embeddings``, as pydantic models that build the body and document it, field for field as
the ``openai`` package's ``CreateEmbeddingResponse``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from apps.chat.protocol import OpenAIObject


class Embedding(OpenAIObject):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(
        description="The vector; with encoding_format=base64, its little-endian float32 bytes in base64."
    )


class EmbeddingUsage(OpenAIObject):
    prompt_tokens: int
    total_tokens: int


class CreateEmbeddingResponse(OpenAIObject):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
