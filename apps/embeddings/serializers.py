from __future__ import annotations

import reprlib
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import StrictCharField
from apps.core.schema import one_or_many
from apps.core.serializers import KnownFieldsSerializer

MAX_INPUTS = 2048
MAX_INPUT_CHARS = 32_000
MAX_INPUT_TOKENS = 8192  # per token array, as at OpenAI (the model reads its own maximum and truncates)


def _is_token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


_TEXT = {"type": "string", "pattern": r"\S", "maxLength": MAX_INPUT_CHARS}  # not blank
_TOKENS = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": MAX_INPUT_TOKENS}


@extend_schema_field(
    {
        "oneOf": one_or_many(_TEXT, _TOKENS, max_items=MAX_INPUTS),
        "description": "A string, a list of strings, or token ids of the embedding model's own tokenizer: one array "
        "of ids or a list of them.",
    }
)
class EmbeddingInputField(serializers.Field):
    """A string or a list of strings; or token ids, which are ids of the embedding model's own tokenizer (the
    worker that loads it checks their range): a list of ints (one input) or a list of such lists."""

    def to_internal_value(self, data: Any) -> list[str] | list[list[int]]:
        inputs = [data] if isinstance(data, str) else data
        if not isinstance(inputs, list) or not inputs:
            raise serializers.ValidationError(
                "input must be a non-empty string, a list of strings, a list of token ids or a list of lists of "
                "token ids."
            )
        if len(inputs) > MAX_INPUTS:
            raise serializers.ValidationError(f"At most {MAX_INPUTS} inputs per request.")
        if all(isinstance(item, str) for item in inputs):
            return _texts(inputs)
        if all(isinstance(item, int | float) and not isinstance(item, bool) for item in inputs):
            return [_token_ids(inputs, "input")]
        if all(isinstance(item, list) for item in inputs):
            return [_token_ids(item, f"input[{index}]") for index, item in enumerate(inputs)]
        raise serializers.ValidationError(
            "input must be all strings, all token ids or all lists of token ids, not a mix."
        )

    def to_representation(self, value: Any) -> Any:
        return value


def _texts(texts: list[str]) -> list[str]:
    for index, text in enumerate(texts):
        if not text.strip():
            raise serializers.ValidationError(f"input[{index}] is empty.")
        if len(text) > MAX_INPUT_CHARS:
            raise serializers.ValidationError(f"input[{index}] is longer than {MAX_INPUT_CHARS} characters.")
    return texts


def _token_ids(ids: list[Any], name: str) -> list[int]:
    if not ids:
        raise serializers.ValidationError(f"{name} is an empty token array.")
    if len(ids) > MAX_INPUT_TOKENS:
        raise serializers.ValidationError(f"{name} has more than {MAX_INPUT_TOKENS} tokens.")
    for position, value in enumerate(ids):
        if not _is_token_id(value):
            raise serializers.ValidationError(
                f"{name}[{position}] must be a token id (a non-negative integer), not {reprlib.repr(value)}."
            )
    return ids


class EmbeddingRequestSerializer(KnownFieldsSerializer):
    input = EmbeddingInputField()
    model = StrictCharField(required=False, max_length=200)
    encoding_format = serializers.ChoiceField(choices=["float", "base64"], default="float")
    dimensions = serializers.IntegerField(required=False, min_value=1)
    input_type = serializers.ChoiceField(
        choices=["query", "passage", "document"],
        required=False,
        help_text="For models trained with query/passage prefixes (multilingual-e5-small): embed the inputs as "
        "search queries (the default) or as passages to be searched (document = passage). A text that "
        "already starts with 'query: ' or 'passage: ' is taken as that type. Other models ignore it.",
    )
    user = StrictCharField(required=False)
