"""TigerBot's legacy ``/bot-service/`` envelope: ``{"code", "msg", "data"}`` around the same services."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import legacy_error_body


def legacy_ok(data: Any, *, msg: str = "success") -> Response:
    return Response({"code": 200, "msg": msg, "data": data})


class LegacyApi(APIView):
    """Errors keep their HTTP status and their OpenAI-style body, wrapped as `data` of the legacy envelope."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(response.data, dict) and "error" in response.data:
            response.data = legacy_error_body(response.data, status_code=response.status_code)
        return response
