"""Request shapes of both chat dialects, validated field by field (errors name the field)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from apps.core.fields import StrictCharField, StrictRegexField, documented_as
from apps.core.serializers import KnownFieldsSerializer
from workers.runtime.specs import MAX_TOP_LOGPROBS

# Fields of OpenAI's API that we accept and ignore: they change nothing about the answer.
IGNORED_OPENAI_FIELDS = frozenset(
    {
        "user",
        "store",
        "metadata",
        "service_tier",
        "prediction",
        "reasoning_effort",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
    }
)
# Fields of OpenAI's API we cannot honour: asked for, they get a 400 rather than a silently different answer.
UNSUPPORTED_OPENAI_FIELDS = frozenset(
    {"logit_bias", "audio", "modalities", "functions", "function_call", "web_search_options"}
)
# Most choices one request may ask for (each is a request in the engine).
MAX_CHOICES = 8


_STOP_STRING = {"type": "string", "minLength": 1}
_TEXT_PART = {
    "type": "object",
    "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
    "required": ["type", "text"],
}


@extend_schema_field({"oneOf": [_STOP_STRING, {"type": "array", "items": _STOP_STRING, "maxItems": 4}]})
class StopField(serializers.Field):
    def to_internal_value(self, data: Any) -> list[str]:
        values = [data] if isinstance(data, str) else data
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values) or len(values) > 4:
            raise serializers.ValidationError("stop must be a non-empty string or a list of at most 4 of them.")
        return values

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": _TEXT_PART}]})
class ContentField(serializers.Field):
    """A string, or OpenAI's list of content parts of which only text parts are supported."""

    def to_internal_value(self, data: Any) -> str:
        if data is None or isinstance(data, str):
            return data or ""
        if isinstance(data, list):
            texts = []
            for part in data:
                if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise serializers.ValidationError("Only text content parts ({type: 'text', text}) are supported.")
                texts.append(part["text"])
            return "".join(texts)
        raise serializers.ValidationError("content must be a string or a list of text parts.")

    def to_representation(self, value: Any) -> Any:
        return value


class FunctionCallSerializer(serializers.Serializer):
    name = StrictCharField(max_length=64)
    arguments = StrictCharField(allow_blank=True, trim_whitespace=False)


class ToolCallSerializer(serializers.Serializer):
    id = StrictCharField(max_length=100)
    type = serializers.ChoiceField(choices=["function"], default="function")
    function = FunctionCallSerializer()


class InstructionMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "developer", "user"])
    content = ContentField()
    name = StrictCharField(required=False, max_length=64)


class AssistantMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["assistant"])
    content = ContentField(required=False, allow_null=True)
    name = StrictCharField(required=False, max_length=64)
    tool_calls = ToolCallSerializer(many=True, required=False)


class ToolMessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["tool"])
    content = ContentField()
    tool_call_id = StrictCharField(max_length=100, error_messages={"required": "A tool message needs tool_call_id."})


_MESSAGE_BY_ROLE: dict[str, type[serializers.Serializer]] = {
    "system": InstructionMessageSerializer,
    "developer": InstructionMessageSerializer,
    "user": InstructionMessageSerializer,
    "assistant": AssistantMessageSerializer,
    "tool": ToolMessageSerializer,
}


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="ChatMessage",
        serializers=[InstructionMessageSerializer, AssistantMessageSerializer, ToolMessageSerializer],
        resource_type_field_name=None,
    )
)
class MessageField(serializers.Field):
    """One message of a conversation, in the shape its ``role`` asks for (OpenAI's union of message types)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("A message must be an object.")
        role = data.get("role")
        serializer_class = _MESSAGE_BY_ROLE.get(role) if isinstance(role, str) else None
        serializer = (serializer_class or InstructionMessageSerializer)(data=data)  # the latter names a bad role
        if not serializer.is_valid():
            raise serializers.ValidationError(serializer.errors)
        return dict(serializer.validated_data)

    def to_representation(self, value: Any) -> Any:
        return value


class FunctionSpecSerializer(serializers.Serializer):
    name = StrictRegexField(r"^[A-Za-z0-9_-]{1,64}$")
    description = StrictCharField(required=False, allow_blank=True, default="")
    parameters = serializers.DictField(required=False, default=dict)


class ToolSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["function"])
    function = FunctionSpecSerializer()


@extend_schema_field({"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1})
class TopPField(serializers.FloatField):
    """Nucleus sampling's probability mass, in (0, 1]: 0 would keep no token."""

    def to_internal_value(self, data: Any) -> float:
        value = super().to_internal_value(data)
        if value <= 0:
            raise serializers.ValidationError("top_p must be greater than 0.")
        return value


class SamplingFields(serializers.Serializer):
    temperature = serializers.FloatField(required=False, min_value=0, max_value=2)
    top_p = TopPField(required=False, max_value=1)
    top_k = serializers.IntegerField(required=False, min_value=0)
    repetition_penalty = serializers.FloatField(required=False, min_value=0.01, max_value=10)
    seed = serializers.IntegerField(required=False)
    stop = StopField(required=False, allow_null=True)
    stream = serializers.BooleanField(required=False, default=False)


class JsonSchemaFormatSerializer(serializers.Serializer):
    name = StrictRegexField(r"^[A-Za-z0-9_-]{1,64}$")
    description = StrictCharField(required=False, allow_blank=True)
    schema = serializers.DictField(required=False, default=dict)
    strict = serializers.BooleanField(required=False, allow_null=True, default=False)


class ResponseFormatSerializer(serializers.Serializer):
    """`text`, `json_object` (any JSON object) or `json_schema`; JSON is enforced by constrained decoding."""

    type = serializers.ChoiceField(choices=["text", "json_object", "json_schema"])
    json_schema = JsonSchemaFormatSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["type"] == "json_schema" and "json_schema" not in attrs:
            raise serializers.ValidationError({"json_schema": "type json_schema needs json_schema {name, schema}."})
        return attrs


class OpenAIChatSerializer(KnownFieldsSerializer, SamplingFields):
    ignored_fields = IGNORED_OPENAI_FIELDS
    unsupported_fields = UNSUPPORTED_OPENAI_FIELDS

    model = StrictCharField(max_length=200)
    messages = serializers.ListField(child=MessageField(), allow_empty=False, min_length=1)
    max_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    max_completion_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    n = serializers.IntegerField(required=False, default=1, min_value=1, max_value=MAX_CHOICES)
    stream_options = serializers.DictField(required=False, allow_null=True)
    tools = ToolSerializer(many=True, required=False)
    tool_choice = documented_as(
        serializers.JSONField(required=False),
        {
            "oneOf": [
                {"type": "string", "enum": ["none", "auto", "required"]},
                {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": ["function"]},
                        "function": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                            "required": ["name"],
                        },
                    },
                    "required": ["type", "function"],
                },
            ]
        },
    )
    parallel_tool_calls = serializers.BooleanField(required=False, default=True)
    frequency_penalty = serializers.FloatField(required=False, allow_null=True)
    presence_penalty = serializers.FloatField(required=False, allow_null=True)
    response_format = ResponseFormatSerializer(required=False)
    logprobs = serializers.BooleanField(required=False, allow_null=True, default=False)
    top_logprobs = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=MAX_TOP_LOGPROBS)

    def validate_tool_choice(self, value: Any) -> Any:
        if value in ("none", "auto", "required"):
            return value
        if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("function"), dict):
            return value
        raise serializers.ValidationError(
            "tool_choice must be 'none', 'auto', 'required' or {type: 'function', function: {name}}."
        )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        for name in ("frequency_penalty", "presence_penalty"):
            if attrs.get(name):
                raise serializers.ValidationError({name: f"{name} is not supported; use repetition_penalty."})
        if attrs.get("top_logprobs") and not attrs.get("logprobs"):
            raise serializers.ValidationError({"top_logprobs": "top_logprobs needs logprobs: true."})
        choice = attrs.get("tool_choice", "auto")
        if choice != "none" and choice != "auto" and not attrs.get("tools"):
            raise serializers.ValidationError({"tool_choice": "tool_choice requires tools."})
        return super().validate(attrs)


class SessionTurnSerializer(serializers.Serializer):
    human = StrictCharField(allow_blank=True, trim_whitespace=False)
    assistant = StrictCharField(allow_blank=True, trim_whitespace=False)


class TigerBotChatSerializer(SamplingFields):
    model = StrictCharField(required=False, max_length=200)
    query = serializers.CharField(trim_whitespace=False)  # a number is taken as text (tests pin it)
    session = SessionTurnSerializer(many=True, required=False, default=list)
    internet = serializers.BooleanField(required=False, default=False)
    system = StrictCharField(required=False, allow_blank=True)
    max_new_tokens = serializers.IntegerField(required=False, min_value=1)
    max_tokens = serializers.IntegerField(required=False, min_value=1)

    def validate_query(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.", code="blank")
        return value


class LegacyGptSerializer(serializers.Serializer):
    text = StrictCharField(trim_whitespace=False)
    # Blank (as an HTML form sends an unset field) means the default model, like an absent one.
    modelVersion = StrictCharField(required=False, allow_blank=True, max_length=200)


class GptResultSerializer(serializers.Serializer):
    result = serializers.ListField(child=serializers.CharField(), help_text="The answer, as a one-item list.")
