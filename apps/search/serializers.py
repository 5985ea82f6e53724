from __future__ import annotations

from rest_framework import serializers


class SearchRequestSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    top_k = serializers.IntegerField(required=False, min_value=1, max_value=50, default=10)
    providers = serializers.ListField(child=serializers.CharField(), required=False, allow_empty=False)
