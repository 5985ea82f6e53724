"""Request shapes (validated) and the batch object (rendered), both as OpenAI defines them."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.batches.endpoints import batch_endpoints
from apps.batches.models import Batch

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


class BatchCreateSerializer(serializers.Serializer):
    input_file_id = serializers.CharField(max_length=40, help_text="A file uploaded with purpose 'batch'.")
    endpoint = serializers.ChoiceField(choices=batch_endpoints(), help_text="The url of every line of the file.")
    completion_window = serializers.ChoiceField(choices=["24h"])
    metadata = MetadataField(required=False, allow_null=True, default=None)


@extend_schema_field({"type": "integer", "nullable": True, "description": "Unix time in seconds"})
class UnixTimeField(serializers.ReadOnlyField):
    def to_representation(self, value: Any) -> int | None:
        return int(value.timestamp()) if value else None


@extend_schema_field({"type": "string", "nullable": True})
class BlankAsNullField(serializers.ReadOnlyField):
    def to_representation(self, value: Any) -> Any:
        return value or None


class BatchRequestCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField(source="request_total")
    completed = serializers.IntegerField(source="request_completed")
    failed = serializers.IntegerField(source="request_failed")


class BatchUsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField(source="prompt_tokens")
    input_tokens_details = serializers.SerializerMethodField()
    output_tokens = serializers.IntegerField(source="completion_tokens")
    output_tokens_details = serializers.SerializerMethodField()
    total_tokens = serializers.SerializerMethodField()

    def get_input_tokens_details(self, batch: Batch) -> dict[str, int]:
        return {"cached_tokens": 0}

    def get_output_tokens_details(self, batch: Batch) -> dict[str, int]:
        return {"reasoning_tokens": 0}

    def get_total_tokens(self, batch: Batch) -> int:
        return batch.prompt_tokens + batch.completion_tokens


class BatchSerializer(serializers.Serializer):
    """OpenAI's batch object."""

    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    endpoint = serializers.CharField()
    model = BlankAsNullField()
    errors = serializers.JSONField(allow_null=True)
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
    metadata = serializers.JSONField(allow_null=True)

    def get_object(self, batch: Batch) -> str:
        return "batch"


class BatchListSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = BatchSerializer(many=True)
    first_id = serializers.CharField(allow_null=True)
    last_id = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


def render_batch(batch: Batch) -> dict[str, Any]:
    return BatchSerializer(batch).data
