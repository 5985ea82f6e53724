from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.health import readiness_checks


class PublicApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []


class HealthzApi(PublicApi):
    @extend_schema(
        operation_id="healthz",
        tags=["health"],
        responses=inline_serializer("Healthz", {"status": serializers.CharField()}),
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class ReadyzApi(PublicApi):
    @extend_schema(
        operation_id="readyz",
        tags=["health"],
        responses=inline_serializer("Readyz", {"status": serializers.CharField(), "checks": serializers.DictField()}),
    )
    def get(self, request: Request) -> Response:
        checks = readiness_checks()
        ready = all(check.ok for check in checks)
        body = {
            "status": "ok" if ready else "unavailable",
            "checks": {check.name: {**asdict(check), "status": "ok" if check.ok else "fail"} for check in checks},
        }
        return Response(body, status=200 if ready else 503)
