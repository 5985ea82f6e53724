"""Declared shapes every app shares: TigerBot's legacy envelope, and the schema hook that documents both error shapes
(OpenAI's error object, the legacy envelope around it) on every operation.

An app declares its own bodies as serializers that build the body (``Serializer(instance).data``) and document it
(``@extend_schema(responses=...)``), so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers

from apps.core.serializers import KnownFieldsSerializer

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
    ``/bot-service/`` as the legacy envelope; an operation that declares ``4XX``/``5XX`` itself (Dify's retrieval
    API, with Dify's error shape) keeps its own. Specific codes it declares (a 404, a 409) take precedence."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_SCHEMAS)
    for path, operations in result.get("paths", {}).items():
        component = "LegacyError" if path.startswith("/bot-service/") else "Error"
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code in ("4XX", "5XX"):
                responses.setdefault(
                    code,
                    {
                        "description": "An error (see `code` for the machine-readable reason).",
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
                    },
                )
    return result


def pydantic_to_openapi30(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: components made from pydantic models (drf_spectacular.contrib.pydantic)
    are JSON Schema 2020-12; OpenAPI 3.0 writes ``Optional`` as ``nullable`` (not ``anyOf [..., {type: null}]``) and
    a ``Literal`` as a one-value ``enum`` (not ``const``)."""
    for schema in result.get("components", {}).get("schemas", {}).values():
        _openapi30(schema)
    return result


def _openapi30(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _openapi30(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _openapi30(value)
    if "const" in node:
        node["enum"] = [node.pop("const")]
    variants = node.get("anyOf")
    if not variants or {"type": "null"} not in variants:
        return
    rest = [variant for variant in variants if variant != {"type": "null"}]
    del node["anyOf"]
    if len(rest) == 1 and "$ref" in rest[0]:
        node["allOf"] = rest  # a $ref takes no sibling keywords in 3.0
    elif len(rest) == 1:
        node.update(rest[0])
    else:
        node["anyOf"] = rest
    node["nullable"] = True
    if "enum" in node and None not in node["enum"]:
        node["enum"] = [*node["enum"], None]


# One server-sent event as a client parses it; its `data` is JSON text (the events' shapes are in the
# operation's description) or OpenAI's closing `[DONE]`.
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"}},
}


def one_or_many(*items: dict[str, Any], max_items: int) -> list[dict[str, Any]]:
    """``oneOf`` alternatives of a field that takes one value or a batch: each of ``items`` alone, then a
    non-empty list of at most ``max_items`` of it."""
    return [
        alternative
        for item in items
        for alternative in (item, {"type": "array", "items": item, "minItems": 1, "maxItems": max_items})
    ]


def json_or_event_stream(body: Any, *, description: str) -> dict[tuple[int, str], OpenApiResponse]:
    """The 200 responses of an operation that answers ``body`` as JSON, or server-sent events (``description``
    names the events) when the request asks to stream."""
    return {
        (200, "application/json"): OpenApiResponse(body, description=description),
        (200, "text/event-stream"): OpenApiResponse(SSE_EVENT, description=description),
    }


def _has_file_field(serializer: Any) -> bool:
    if isinstance(serializer, PolymorphicProxySerializer):
        return any(_has_file_field(child) for child in serializer.serializers)
    if isinstance(serializer, type) and issubclass(serializer, serializers.BaseSerializer):
        serializer = serializer()
    if isinstance(serializer, serializers.ListSerializer):
        serializer = serializer.child
    fields = serializer.fields.values() if isinstance(serializer, serializers.Serializer) else ()
    return any(_is_file(field) for field in fields)


def _is_file(field: serializers.Field) -> bool:
    return isinstance(field, serializers.FileField) or isinstance(getattr(field, "child", None), serializers.FileField)


class ContractSchema(AutoSchema):
    """A request body is documented as JSON unless it carries a file (then as multipart, as sent). The parsers
    still read a form post of a JSON endpoint, for lenient clients; the contract, and generated clients, use JSON,
    which alone can say null, nested objects and lists of one item. The fields a body accepts and ignores (OpenAI's
    ``user``, …) are documented as such, so that a client generated from the schema can send them too."""

    def _map_serializer(self, serializer: Any, direction: str, bypass_extensions: bool = False) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, KnownFieldsSerializer):
            properties = schema.setdefault("properties", {})
            for name in sorted(serializer.ignored_fields - properties.keys()):
                properties[name] = {"description": "Accepted and ignored: it changes nothing here."}
        return schema

    def map_parsers(self) -> list[Any]:
        media_types = super().map_parsers()
        if "application/json" in media_types and not _has_file_field(self.get_request_serializer()):
            return ["application/json"]
        return media_types
