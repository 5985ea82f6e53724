from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.accounts.models import ApiKey


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    rate_limit_per_minute = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=1_000_000, default=None
    )


class ApiKeyOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="api_key")
    name = serializers.CharField()
    prefix = serializers.SerializerMethodField()
    created_at = serializers.SerializerMethodField()
    last_used_at = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()
    revoked = serializers.SerializerMethodField()
    rate_limit_per_minute = serializers.IntegerField(source="effective_rate_limit")

    def get_prefix(self, obj: ApiKey) -> str:
        return f"tb-{obj.prefix}"

    def get_created_at(self, obj: ApiKey) -> int:
        return int(obj.created_at.timestamp())

    def get_last_used_at(self, obj: ApiKey) -> int | None:
        return int(obj.last_used_at.timestamp()) if obj.last_used_at else None

    def get_expires_at(self, obj: ApiKey) -> int | None:
        return int(obj.expires_at.timestamp()) if obj.expires_at else None

    def get_revoked(self, obj: ApiKey) -> bool:
        return obj.is_revoked


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(help_text="The plaintext key. Shown only in this response.")


class ApiKeyListOutputSerializer(serializers.Serializer):
    object = serializers.CharField(default="list")
    data = ApiKeyOutputSerializer(many=True)
    first_id = serializers.CharField(allow_null=True)
    last_id = serializers.CharField(allow_null=True)
    has_more = serializers.BooleanField()


def render_api_key(api_key: ApiKey) -> dict[str, Any]:
    return dict(ApiKeyOutputSerializer(api_key).data)
