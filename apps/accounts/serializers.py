from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.accounts.models import ApiKey
from apps.accounts.services import CreatedApiKey
from apps.core.fields import ConstantField, UnixTimeField
from apps.core.serializers import KnownFieldsSerializer, PageSerializer


class ApiKeyCreateInputSerializer(KnownFieldsSerializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="No later than the calling key's expiry, which it inherits when left out.",
    )
    rate_limit_per_minute = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=1_000_000,
        default=None,
        help_text="At most the calling key's limit, which it inherits when left out.",
    )


class ApiKeyOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = ConstantField("api_key")
    name = serializers.CharField()
    prefix = serializers.SerializerMethodField()
    created_at = UnixTimeField(allow_null=False)
    last_used_at = UnixTimeField()
    expires_at = UnixTimeField()
    revoked = serializers.BooleanField(source="is_revoked")
    rate_limit_per_minute = serializers.IntegerField(source="effective_rate_limit")

    def get_prefix(self, obj: ApiKey) -> str:
        return f"tb-{obj.prefix}"


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    """A new key, with its plaintext `key`: shown only in this response."""

    key = serializers.CharField(read_only=True, help_text="The plaintext key. Shown only in this response.")

    def to_representation(self, instance: CreatedApiKey) -> dict[str, Any]:
        body: dict[str, Any] = super().to_representation(instance.api_key)  # without ``key``: not stored
        body["key"] = self.fields["key"].to_representation(instance.plaintext)
        return body


class ApiKeyListOutputSerializer(PageSerializer):
    data = ApiKeyOutputSerializer(many=True)
