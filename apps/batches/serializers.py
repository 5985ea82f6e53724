"""Request shapes (validated) and the batch object (rendered), both as OpenAI defines them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.batches.endpoints import batch_endpoints
from apps.batches.models import Batch
from apps.core.fields import BlankAsNullField, ConstantField, UnixTimeField
from apps.core.serializers import KnownFieldsSerializer, PageSerializer

MAX_METADATA_KEYS = 16
MAX_METADATA_KEY_CHARS = 64
MAX_METADATA_VALUE_CHARS = 512


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {"type": "string", "maxLength": 512},
        "maxProperties": 16,
        "nullable": True,
    }
)
class MetadataField(serializers.Field):
    """OpenAI's metadata: up to 16 string keys (≤ 64 characters) with string values (≤ 512 characters)."""

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("metadata must be an object of string keys and string values.")
        if len(data) > MAX_METADATA_KEYS:
            raise serializers.ValidationError(f"metadata may have at most {MAX_METADATA_KEYS} keys.")
        for key, value in data.items():
            if len(key) > MAX_METADATA_KEY_CHARS:
                raise serializers.ValidationError(f"metadata keys have at most {MAX_METADATA_KEY_CHARS} characters.")
            if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE_CHARS:
                raise serializers.ValidationError(
                    f"metadata[{key!r}] must be a string of at most {MAX_METADATA_VALUE_CHARS} characters."
                )
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class OutputExpiresAfterSerializer(serializers.Serializer):
    anchor = serializers.ChoiceField(choices=["created_at"])
    seconds = serializers.IntegerField(min_value=3600, max_value=2_592_000)


class BatchCreateSerializer(KnownFieldsSerializer):
    input_file_id = serializers.CharField(max_length=40, help_text="A file uploaded with purpose 'batch'.")
    endpoint = serializers.ChoiceField(choices=batch_endpoints(), help_text="The url of every line of the file.")
    completion_window = serializers.ChoiceField(choices=["24h"])
    metadata = MetadataField(required=False, allow_null=True, default=None)
    output_expires_after = OutputExpiresAfterSerializer(
        required=False,
        allow_null=True,
        help_text="OpenAI's expiry of the output and error files; accepted and ignored: files are kept until deleted.",
    )


class BatchErrorSerializer(serializers.Serializer):
    code = serializers.CharField(allow_null=True)
    line = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(allow_null=True)
    param = serializers.CharField(allow_null=True)


class BatchErrorsSerializer(serializers.Serializer):
    object = ConstantField("list")
    data = BatchErrorSerializer(many=True)  # type: ignore[assignment]  # a field: the metaclass moves it out of the class


class BatchRequestCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField(source="request_total")
    completed = serializers.IntegerField(source="request_completed")
    failed = serializers.IntegerField(source="request_failed")


def _zero_count_schema(name: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "integer"}}, "required": [name]}


class BatchUsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField(source="prompt_tokens")
    input_tokens_details = serializers.SerializerMethodField()
    output_tokens = serializers.IntegerField(source="completion_tokens")
    output_tokens_details = serializers.SerializerMethodField()
    total_tokens = serializers.SerializerMethodField()

    @extend_schema_field(_zero_count_schema("cached_tokens"))
    def get_input_tokens_details(self, batch: Batch) -> dict[str, int]:
        return {"cached_tokens": 0}

    @extend_schema_field(_zero_count_schema("reasoning_tokens"))
    def get_output_tokens_details(self, batch: Batch) -> dict[str, int]:
        return {"reasoning_tokens": 0}

    def get_total_tokens(self, batch: Batch) -> int:
        return batch.prompt_tokens + batch.completion_tokens


class BatchSerializer(serializers.Serializer):
    """OpenAI's batch object."""

    id = serializers.CharField()
    object = ConstantField("batch")
    endpoint = serializers.CharField()
    model = BlankAsNullField()
    errors = BatchErrorsSerializer(allow_null=True)  # type: ignore[assignment]  # a field: the metaclass moves it out of the class
    input_file_id = serializers.CharField()
    completion_window = serializers.CharField()
    status = serializers.ChoiceField(choices=Batch.Status.choices)
    output_file_id = BlankAsNullField()
    error_file_id = BlankAsNullField()
    created_at = UnixTimeField()
    in_progress_at = UnixTimeField()
    expires_at = UnixTimeField()
    finalizing_at = UnixTimeField()
    completed_at = UnixTimeField()
    failed_at = UnixTimeField()
    expired_at = UnixTimeField()
    cancelling_at = UnixTimeField()
    cancelled_at = UnixTimeField()
    request_counts = BatchRequestCountsSerializer(source="*")
    usage = BatchUsageSerializer(source="*")
    metadata = MetadataField(allow_null=True)


class BatchListSerializer(PageSerializer):
    data = BatchSerializer(many=True)
