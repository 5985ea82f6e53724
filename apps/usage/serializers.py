from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import ConstantField, documented_as

MAX_RANGE_DAYS = 366
DATE_OR_BLANK = {"type": "string", "anyOf": [{"format": "date"}, {"maxLength": 0}]}


class UsageQuerySerializer(serializers.Serializer):
    # Blank (``?start_date=``) is the default, as a query parameter left empty is absent.
    start_date = documented_as(
        serializers.DateField(required=False, help_text="Default: 29 days before end_date."), DATE_OR_BLANK
    )
    end_date = documented_as(serializers.DateField(required=False, help_text="Default: today (UTC)."), DATE_OR_BLANK)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
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


TOTALS = ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "images")


class UsageTotalsSerializer(UsageRowSerializer):
    """The sums over all rows: a row without its day and model."""

    # None removes an inherited field (DRF).
    date = None  # type: ignore[assignment]
    model = None  # type: ignore[assignment]


class UsageOutputSerializer(serializers.Serializer):
    """The caller's usage between two dates: a row per day and model, and their sums."""

    # Built from {start_date, end_date, data}.

    object = ConstantField("usage")
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    data = UsageRowSerializer(many=True)  # type: ignore[assignment]  # a field: the metaclass moves it out of the class
    totals = serializers.SerializerMethodField()

    @extend_schema_field(UsageTotalsSerializer)
    def get_totals(self, usage: dict[str, Any]) -> dict[str, int]:
        return {name: sum(row[name] for row in usage["data"]) for name in TOTALS}
