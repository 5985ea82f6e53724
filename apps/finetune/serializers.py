"""Request shapes of the fine-tuning API (TigerBot, OpenAI and legacy dialects); the responses are in responses.py."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import documented_as
from apps.core.serializers import KnownFieldsSerializer
from apps.finetune.models import FineTuneJob

_SUFFIX = r"^[A-Za-z0-9_-]{0,40}$"
_SUFFIX_HELP = "Up to 40 letters, digits, '-' and '_', added to the fine-tuned model's name."


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": "Training options by name (those of `POST /v1/fine_tuning/jobs`), or that object as "
        "JSON text; 'auto' means the default.",
    }
)
class JsonObjectField(serializers.Field):
    """A JSON object given as an object (JSON body) or as JSON text (a multipart form field)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except ValueError:
                raise serializers.ValidationError("Must be a JSON object (text that parses as one).") from None
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class FileUploadSerializer(KnownFieldsSerializer):
    # OpenAI's expiry (the SDK sends it as these form fields): files are kept until deleted.
    ignored_fields = frozenset({"expires_after[anchor]", "expires_after[seconds]"})

    file = serializers.FileField(allow_empty_file=True)
    purpose = documented_as(serializers.CharField(), {"type": "string", "enum": ["fine-tune", "batch"]})
    skip_invalid_records = serializers.BooleanField(
        required=False, default=False, help_text="Accept a file with some invalid records; they are dropped."
    )


class TigerBotFinetuneCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    file = serializers.FileField(allow_empty_file=True)
    model = serializers.CharField(required=False, max_length=200)
    method = serializers.ChoiceField(choices=FineTuneJob.Method.values, required=False, default="lora")
    hyperparameters = JsonObjectField(required=False, default=dict)
    validation_file = serializers.FileField(required=False, allow_empty_file=True)
    suffix = serializers.RegexField(_SUFFIX, required=False, allow_blank=True, default="", help_text=_SUFFIX_HELP)
    skip_invalid_records = serializers.BooleanField(required=False, default=False)


class OpenAIJobCreateSerializer(KnownFieldsSerializer):
    model = serializers.CharField(max_length=200)
    training_file = serializers.CharField(max_length=40)
    validation_file = serializers.CharField(required=False, allow_null=True, max_length=40)
    hyperparameters = JsonObjectField(required=False, default=dict)
    method = documented_as(
        serializers.JSONField(
            required=False, help_text="OpenAI's {type: 'supervised', supervised: {...}}, or one of qlora, lora, full"
        ),
        {
            "oneOf": [
                {"type": "string", "enum": FineTuneJob.Method.values},
                {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": ["supervised"]},
                        "supervised": {
                            "type": "object",
                            "properties": {"hyperparameters": {"type": "object"}},
                        },
                    },
                },
            ]
        },
    )
    training_method = serializers.ChoiceField(choices=FineTuneJob.Method.values, required=False)
    suffix = serializers.RegexField(_SUFFIX, required=False, allow_null=True, allow_blank=True, help_text=_SUFFIX_HELP)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    integrations = serializers.ListField(required=False, allow_empty=True, max_length=0)
    metadata = serializers.DictField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        method = attrs.pop("method", None)
        hyperparameters = dict(attrs.get("hyperparameters") or {})
        training_method = attrs.pop("training_method", None)
        if isinstance(method, str):
            training_method = training_method or method
        elif isinstance(method, dict):
            if method.get("type", "supervised") != "supervised":
                raise serializers.ValidationError({"method": "Only supervised fine-tuning is supported."})
            supervised = method.get("supervised") or {}
            if not isinstance(supervised, dict):
                raise serializers.ValidationError({"method": "method.supervised must be an object."})
            nested = supervised.get("hyperparameters") or {}
            if not isinstance(nested, dict):
                raise serializers.ValidationError({"method": "method.supervised.hyperparameters must be an object."})
            hyperparameters = {**nested, **hyperparameters}
        elif method is not None:
            raise serializers.ValidationError({"method": "Must be an object or a method name."})
        if training_method not in (None, *FineTuneJob.Method.values):
            raise serializers.ValidationError({"method": f"Must be one of {FineTuneJob.Method.values}."})
        return super().validate({**attrs, "hyperparameters": hyperparameters, "method": training_method or "lora"})


class LegacyUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    skip_invalid_records = serializers.BooleanField(required=False, default=False)


class LegacyStartTrainSerializer(serializers.Serializer):
    fileId = serializers.CharField(max_length=40)
    name = serializers.CharField(required=False, max_length=100, default="")
    model = serializers.CharField(required=False, max_length=200)
    method = serializers.ChoiceField(choices=FineTuneJob.Method.values, required=False, default="lora")
    hyperparameters = JsonObjectField(required=False, default=dict)


class LegacyFtIdSerializer(serializers.Serializer):
    ftId = serializers.CharField(max_length=40)


class LegacyCallSerializer(LegacyFtIdSerializer):
    text = serializers.CharField(trim_whitespace=False)
