from __future__ import annotations

from typing import Any

from rest_framework import serializers

MAX_INPUTS = 2048
MAX_INPUT_CHARS = 32_000


class EmbeddingInputField(serializers.Field):
    """A string or a list of strings (token-id arrays are not supported: they are tokenizer-specific)."""

    def to_internal_value(self, data: Any) -> list[str]:
        texts = [data] if isinstance(data, str) else data
        if not isinstance(texts, list) or not texts:
            raise serializers.ValidationError("input must be a non-empty string or a non-empty list of strings.")
        if len(texts) > MAX_INPUTS:
            raise serializers.ValidationError(f"At most {MAX_INPUTS} inputs per request.")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise serializers.ValidationError(f"input[{index}] must be a string (token arrays are not supported).")
            if not text.strip():
                raise serializers.ValidationError(f"input[{index}] is empty.")
            if len(text) > MAX_INPUT_CHARS:
                raise serializers.ValidationError(f"input[{index}] is longer than {MAX_INPUT_CHARS} characters.")
        return texts

    def to_representation(self, value: Any) -> Any:
        return value


class EmbeddingRequestSerializer(serializers.Serializer):
    input = EmbeddingInputField()
    model = serializers.CharField(required=False, max_length=200)
    encoding_format = serializers.ChoiceField(choices=["float", "base64"], default="float")
    dimensions = serializers.IntegerField(required=False, min_value=1)
    user = serializers.CharField(required=False)
