from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

MAX_RANGE_DAYS = 366


class UsageQuerySerializer(serializers.Serializer):
    start_date = serializers.DateField(required=False)
    end_date = serializers.DateField(required=False)

    def validate(self, attrs: dict) -> dict:
        end = attrs.get("end_date") or timezone.now().date()
        start = attrs.get("start_date") or end - timedelta(days=29)
        if start > end:
            raise serializers.ValidationError({"start_date": "start_date must not be after end_date."})
        if (end - start).days > MAX_RANGE_DAYS:
            raise serializers.ValidationError({"start_date": f"The range may span at most {MAX_RANGE_DAYS} days."})
        return {"start": start, "end": end}


class UsageRowSerializer(serializers.Serializer):
    date = serializers.DateField()
    model = serializers.CharField()
    requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    images = serializers.IntegerField(help_text="Images generated (text2image).")


class UsageOutputSerializer(serializers.Serializer):
    object = serializers.CharField(default="usage")
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    data = UsageRowSerializer(many=True)
    totals = serializers.DictField(child=serializers.IntegerField())
