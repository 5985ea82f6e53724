from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.health import CheckResult, readiness_checks


class HealthzSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])


class ReadinessCheckSerializer(serializers.Serializer):
    name = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()
    latency_ms = serializers.FloatField()
    status = serializers.SerializerMethodField()

    def get_status(self, check: CheckResult) -> str:
        return "ok" if check.ok else "fail"


class ReadyzSerializer(serializers.Serializer):
    """`status` ok when every check passed, and each check by its name."""

    # Built from the list of checks.

    status = serializers.SerializerMethodField()
    checks = serializers.SerializerMethodField()

    def get_status(self, checks: list[CheckResult]) -> str:
        return "ok" if all(check.ok for check in checks) else "unavailable"

    @extend_schema_field(serializers.DictField(child=ReadinessCheckSerializer()))
    def get_checks(self, checks: list[CheckResult]) -> dict[str, Any]:
        return {check.name: ReadinessCheckSerializer(check).data for check in checks}


class PublicApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []


class HealthzApi(PublicApi):
    @extend_schema(
        operation_id="healthz",
        tags=["health"],
        responses=HealthzSerializer,
    )
    def get(self, request: Request) -> Response:
        return Response(HealthzSerializer({"status": "ok"}).data)


class ReadyzApi(PublicApi):
    @extend_schema(
        operation_id="readyz",
        tags=["health"],
        responses={200: ReadyzSerializer, 503: ReadyzSerializer},
        description="503 (same body) while a check fails. With Redis configured, `workers` needs a Celery worker "
        "that answers a ping and `serving` a live serve worker (one that renewed its heartbeat in the last 10 s).",
    )
    def get(self, request: Request) -> Response:
        checks = readiness_checks()
        return Response(ReadyzSerializer(checks).data, status=200 if all(check.ok for check in checks) else 503)
