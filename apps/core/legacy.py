"""TigerBot's legacy ``/bot-service/`` envelope: ``{"code", "msg", "data"}`` around the same services."""

from __future__ import annotations

from typing import Any

from rest_framework.response import Response
from rest_framework.views import APIView


def legacy_ok(data: Any, *, msg: str = "success") -> Response:
    return Response({"code": 200, "msg": msg, "data": data})


class LegacyApi(APIView):
    """Errors keep their HTTP status and their OpenAI-style body, wrapped as ``data`` of the legacy envelope."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(response.data, dict) and "error" in response.data:
            error = response.data["error"]
            response.data = {"code": response.status_code, "msg": error["message"], "data": {"error": error}}
        return response
