"""The request shape of OpenAI's legacy ``POST /v1/completions`` (prompt in, text out)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.chat.serializers import MAX_CHOICES, SamplingFields
from apps.core.fields import StrictCharField
from apps.core.schema import one_or_many
from apps.core.serializers import KnownFieldsSerializer
from workers.runtime.specs import Prompt

MAX_PROMPTS = 16
# Legacy ``logprobs`` is a count of alternatives per token, at most 5 in OpenAI's API.
MAX_LEGACY_LOGPROBS = 5
IGNORED_FIELDS = frozenset({"user"})
UNSUPPORTED_FIELDS = frozenset({"suffix", "logit_bias"})


def _is_token_list(value: Any) -> bool:
    return (
        isinstance(value, list) and bool(value) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


_TEXT = {"type": "string", "minLength": 1}
_TOKENS = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}


@extend_schema_field({"oneOf": one_or_many(_TEXT, _TOKENS, max_items=MAX_PROMPTS)})
class PromptField(serializers.Field):
    """A string, a list of strings, a list of token ids, or a list of such lists; always a list of prompts."""

    def to_internal_value(self, data: Any) -> list[Prompt]:
        if isinstance(data, str) or _is_token_list(data):
            prompts: list[Any] = [data]
        elif isinstance(data, list) and data:
            prompts = data
        else:
            raise serializers.ValidationError(
                "prompt must be a string, a list of strings, a list of token ids or a list of token-id lists."
            )
        if len(prompts) > MAX_PROMPTS:
            raise serializers.ValidationError(f"At most {MAX_PROMPTS} prompts per request.")
        for index, prompt in enumerate(prompts):
            if not (isinstance(prompt, str) and prompt) and not _is_token_list(prompt):
                raise serializers.ValidationError(f"prompt[{index}] must be a non-empty string or token-id list.")
            if isinstance(prompt, list) and any(token < 0 for token in prompt):
                raise serializers.ValidationError(f"prompt[{index}] has a negative token id.")
        return prompts

    def to_representation(self, value: Any) -> Any:
        return value


class CompletionRequestSerializer(KnownFieldsSerializer, SamplingFields):
    ignored_fields = IGNORED_FIELDS
    unsupported_fields = UNSUPPORTED_FIELDS

    model = StrictCharField(max_length=200)
    prompt = PromptField()
    max_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=16)
    n = serializers.IntegerField(required=False, default=1, min_value=1, max_value=MAX_CHOICES)
    best_of = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    echo = serializers.BooleanField(required=False, default=False)
    logprobs = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=MAX_LEGACY_LOGPROBS)
    stream_options = serializers.DictField(required=False, allow_null=True)
    frequency_penalty = serializers.FloatField(required=False, allow_null=True)
    presence_penalty = serializers.FloatField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name in ("frequency_penalty", "presence_penalty"):
            if attrs.get(name):
                raise serializers.ValidationError({name: f"{name} is not supported; use repetition_penalty."})
        if attrs.get("best_of") not in (None, attrs["n"]):
            raise serializers.ValidationError({"best_of": "best_of other than n is not supported."})
        if len(attrs["prompt"]) * attrs["n"] > MAX_PROMPTS:
            raise serializers.ValidationError({"n": f"prompts × n may be at most {MAX_PROMPTS}."})
        if attrs["echo"] and any(not isinstance(p, str) for p in attrs["prompt"]):
            raise serializers.ValidationError({"echo": "echo needs text prompts, not token ids."})
        return super().validate(attrs)
