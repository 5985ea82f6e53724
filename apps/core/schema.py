"""Declared shapes every app shares: TigerBot's legacy envelope, and the schema hook that documents both error shapes
(OpenAI's error object, the legacy envelope around it) on every operation.

An app declares its own bodies as serializers that build the body (``Serializer(instance).data``) and document it
(``@extend_schema(responses=...)``), so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

_ERROR_OBJECT = {
    "type": "object",
    "properties": {
        "message": {"type": "string"},
        "type": {"type": "string"},
        "param": {"type": "string", "nullable": True},
        "code": {"type": "string"},
    },
    "required": ["message", "type", "param", "code"],
}
# The bodies ``apps.core.errors.error_body`` and ``legacy_error_body`` build. Extra keys (e.g. per-line ``errors``
# of a rejected upload) may follow the four.
ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {"type": "object", "properties": {"error": _ERROR_OBJECT}, "required": ["error"]},
    "LegacyError": {
        "type": "object",
        "properties": {
            "code": {"type": "integer"},
            "msg": {"type": "string"},
            "data": {"$ref": "#/components/schemas/Error"},
        },
        "required": ["code", "msg", "data"],
    },
}


_LEGACY_ENVELOPES: dict[str, type[serializers.Serializer]] = {}


def legacy_envelope(
    data: type[serializers.BaseSerializer] | serializers.BaseSerializer,
) -> type[serializers.Serializer]:
    """TigerBot's ``{"code": 200, "msg": "success", "data": ...}`` around ``data`` (a serializer class or
    instance, ``many=True`` included), as a component named ``Legacy<Data>``."""
    field = data if isinstance(data, serializers.BaseSerializer) else data()
    inner = field.child if isinstance(field, serializers.ListSerializer) else field
    name = f"Legacy{type(inner).__name__.removesuffix('Serializer')}{'List' if inner is not field else ''}"
    if name not in _LEGACY_ENVELOPES:
        _LEGACY_ENVELOPES[name] = type(
            f"{name}Serializer",
            (serializers.Serializer,),
            {"code": serializers.IntegerField(), "msg": serializers.CharField(), "data": field},
        )
    return _LEGACY_ENVELOPES[name]


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation answers errors as OpenAI's error object, or under
    ``/bot-service/`` as the legacy envelope, unless it declares its own error responses (Dify's retrieval API)."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_SCHEMAS)
    for path, operations in result.get("paths", {}).items():
        component = "LegacyError" if path.startswith("/bot-service/") else "Error"
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if any(code.startswith(("4", "5")) for code in responses):
                continue
            for code in ("4XX", "5XX"):
                responses[code] = {
                    "description": "An error (see `code` for the machine-readable reason).",
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
                }
    return result
