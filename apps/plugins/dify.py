"""Dify's External Knowledge API over a plugin: ``POST /v1/dify/retrieval``.

Dify is configured with the endpoint base ``<host>/v1/dify`` (it appends ``/retrieval``), one of the platform's
API keys, and a plugin id or slug as the knowledge id. Errors answer in Dify's ``{"error_code", "error_msg"}``
shape instead of the platform's usual one, for this view only.
"""

from __future__ import annotations

import contextlib
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.caller import request_user
from apps.core.errors import first_validation_error, status_of
from apps.core.fields import StrictCharField
from apps.plugins import selectors
from apps.plugins.filters import Condition, Filter, Group
from workers.errors import DomainError, InvalidRequest, NotFound

INVALID_AUTHORIZATION_FORMAT = 1001
AUTHORIZATION_FAILED = 1002
KNOWLEDGE_NOT_FOUND = 2001
_MALFORMED_AUTH_CODES = {"not_authenticated", "malformed_authorization", "malformed_api_key"}

# Dify's comparison operators that map onto the filter language; the value is coerced per kind.
_NUMERIC_OPS = {"=": "eq", "≠": "ne", ">": "gt", "<": "lt", "≥": "gte", "≤": "lte"}
_TEXT_OPS = {"is": "eq", "is not": "ne"}
_LIST_OPS = {"in": "in", "not in": "nin"}
_TIME_OPS = {"before": "lt", "after": "gt"}
_EMPTY_OPS = {"empty", "not empty"}
SUPPORTED_OPERATORS = (*_TEXT_OPS, *_LIST_OPS, *_EMPTY_OPS, *_NUMERIC_OPS, *_TIME_OPS)


class DifyRetrievalSettingSerializer(serializers.Serializer):
    top_k = serializers.IntegerField(min_value=1, max_value=selectors.MAX_TOP_K)
    score_threshold = serializers.FloatField(min_value=0, required=False, default=0.0)


class DifyConditionSerializer(serializers.Serializer):
    name = serializers.JSONField(help_text="A metadata key, or a list of keys (the condition holds for any).")
    comparison_operator = StrictCharField()
    value = serializers.JSONField(required=False, allow_null=True, default=None)


class DifyMetadataConditionSerializer(serializers.Serializer):
    logical_operator = serializers.ChoiceField(choices=["and", "or"], required=False, default="and")
    conditions = DifyConditionSerializer(many=True)


class DifyRetrievalSerializer(serializers.Serializer):
    knowledge_id = StrictCharField(help_text="A plugin id or slug the API key's owner may search.")
    query = StrictCharField()
    retrieval_setting = DifyRetrievalSettingSerializer()
    metadata_condition = DifyMetadataConditionSerializer(required=False, allow_null=True, default=None)


class DifyRecordSerializer(serializers.Serializer):
    """A passage, in Dify's external-knowledge shape."""

    # Built from a hit of selectors.plugin_search_in.

    content = serializers.CharField(source="text")
    score = serializers.FloatField()
    title = serializers.CharField()
    metadata = serializers.SerializerMethodField(help_text="doc_id, url and the document's own metadata.")

    def get_metadata(self, hit: dict[str, Any]) -> dict[str, Any]:
        return {"doc_id": hit["doc_id"], "url": hit["url"], **hit["meta"]}


class DifyRecordsSerializer(serializers.Serializer):
    records = DifyRecordSerializer(many=True)


class DifyErrorSerializer(serializers.Serializer):
    error_code = serializers.IntegerField(
        help_text="1001 bad Authorization format, 1002 authorization failed, "
        "2001 no such knowledge; otherwise the HTTP status."
    )
    error_msg = serializers.CharField()


def _bad(message: str) -> DomainError:
    return InvalidRequest(message, param="metadata_condition")


def _number(value: Any, operator: str) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            return int(number) if number.is_integer() else number
    raise _bad(f"operator {operator!r} needs a numeric value, not {value!r}.")


def _emptiness(*, key: str, empty: bool) -> Group:
    """Absent, null or "" (``empty``), or none of those."""
    op = "eq" if empty else "ne"
    return Group(
        combinator="or" if empty else "and",
        children=(
            Condition(key=key, op="exists", value=not empty),
            Condition(key=key, op=op, value=None),
            Condition(key=key, op=op, value=""),
        ),
    )


def _condition(*, key: str, operator: str, value: Any) -> Filter:
    if operator in _NUMERIC_OPS:
        return Condition(key=key, op=_NUMERIC_OPS[operator], value=_number(value, operator))
    if operator in _TEXT_OPS:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _bad(f"operator {operator!r} needs a string or number value.")
        return Condition(key=key, op=_TEXT_OPS[operator], value=value)
    if operator in _LIST_OPS:
        if not isinstance(value, list) or not value or not all(isinstance(v, str | int | float) for v in value):
            raise _bad(f"operator {operator!r} needs a non-empty list of values.")
        return Condition(key=key, op=_LIST_OPS[operator], value=value)
    if operator in _TIME_OPS:
        if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
            raise _bad(f"operator {operator!r} needs a date (ISO 8601 string) or a timestamp.")
        # An ISO 8601 string stays a string: compared as strings, such dates order correctly.
        with contextlib.suppress(DomainError):
            value = _number(value, operator)
        return Condition(key=key, op=_TIME_OPS[operator], value=value)
    if operator in _EMPTY_OPS:
        return _emptiness(key=key, empty=operator == "empty")
    raise _bad(f"unsupported comparison_operator {operator!r}; supported: {', '.join(SUPPORTED_OPERATORS)}.")


def metadata_condition_filter(*, condition: dict[str, Any] | None) -> Filter | None:
    """Dify's ``metadata_condition`` as a plugin filter; operators without a clean mapping raise ``DomainError``."""
    if not condition or not condition["conditions"]:
        return None
    parts: list[Filter] = []
    for item in condition["conditions"]:
        names = item["name"] if isinstance(item["name"], list) else [item["name"]]
        if not names or not all(isinstance(n, str) and n and not n.isdigit() for n in names):
            raise _bad("name must be a metadata key or a non-empty list of keys.")
        per_name = [_condition(key=n, operator=item["comparison_operator"], value=item["value"]) for n in names]
        parts.append(per_name[0] if len(per_name) == 1 else Group(combinator="or", children=tuple(per_name)))
    return parts[0] if len(parts) == 1 else Group(combinator=condition["logical_operator"], children=tuple(parts))


def _error(status_code: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response({"error_code": code, "error_msg": message}, status=status_code, headers=headers)


def dify_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Dify's error shape and codes; other failures keep their HTTP status as ``error_code``."""
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        codes = exc.get_codes()
        if isinstance(exc, exceptions.NotAuthenticated) or codes in _MALFORMED_AUTH_CODES:
            return _error(
                403,
                INVALID_AUTHORIZATION_FORMAT,
                "Invalid Authorization header format. Expected 'Bearer <api-key>' format.",
            )
        return _error(403, AUTHORIZATION_FAILED, f"Authorization failed: {exc.detail}")
    if isinstance(exc, NotFound):
        return _error(404, KNOWLEDGE_NOT_FOUND, "The knowledge does not exist.")
    if isinstance(exc, DomainError):
        message = exc.message if not exc.param or exc.message.startswith(exc.param) else f"{exc.param}: {exc.message}"
        return _error(status_of(exc), status_of(exc), message)
    if isinstance(exc, exceptions.ValidationError):
        param, message, _ = first_validation_error(exc.detail)
        return _error(400, 400, f"{param}: {message}" if param else message)
    if isinstance(exc, exceptions.APIException):
        headers = {}
        wait = getattr(exc, "wait", None)  # Throttled's
        if wait is not None:
            headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        return _error(exc.status_code, exc.status_code, str(exc.detail), headers)
    return None


class DifyRetrievalApi(APIView):
    def get_exception_handler(self) -> Any:
        return dify_exception_handler

    @extend_schema(
        operation_id="dify_external_knowledge_retrieval",
        tags=["plugins"],
        request={"application/json": DifyRetrievalSerializer},
        responses={200: DifyRecordsSerializer, "4XX": DifyErrorSerializer, "5XX": DifyErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = DifyRetrievalSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        plugin = selectors.plugin_get_usable(
            user=request_user(request), plugin=data["knowledge_id"], param="knowledge_id"
        )
        setting = data["retrieval_setting"]
        hits = selectors.plugin_search_in(
            plugin=plugin,
            query=data["query"],
            top_k=setting["top_k"],
            filters=metadata_condition_filter(condition=data["metadata_condition"]),
            score_threshold=setting["score_threshold"],
        )
        return Response(DifyRecordsSerializer({"records": hits}).data)
