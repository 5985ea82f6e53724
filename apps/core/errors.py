"""The one place errors meet HTTP: domain errors (``workers.errors``) and DRF's own exceptions become a status code
and OpenAI's ``{"error": {"message", "type", "param", "code"}}`` (TigerBot's legacy envelope wraps the same body).

``code`` is a stable machine-readable string; ``type`` follows OpenAI's families so SDKs classify errors.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, JsonResponse
from kombu.exceptions import OperationalError as BrokerOperationalError
from rest_framework import exceptions, status
from rest_framework.response import Response

from workers.errors import ERROR_CLASS_BY_KIND, DomainError, ErrorKind, NotFound, Unavailable

logger = logging.getLogger(__name__)

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID: status.HTTP_400_BAD_REQUEST,
    ErrorKind.FORBIDDEN: status.HTTP_403_FORBIDDEN,
    ErrorKind.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorKind.CONFLICT: status.HTTP_409_CONFLICT,
    ErrorKind.TOO_LARGE: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    ErrorKind.INTERNAL: status.HTTP_500_INTERNAL_SERVER_ERROR,
    ErrorKind.UPSTREAM_FAILED: status.HTTP_502_BAD_GATEWAY,
    ErrorKind.UNAVAILABLE: status.HTTP_503_SERVICE_UNAVAILABLE,
    ErrorKind.UPSTREAM_TIMEOUT: status.HTTP_504_GATEWAY_TIMEOUT,
}
_KIND_BY_STATUS = {code: kind for kind, code in STATUS_BY_KIND.items()}


def status_of(error: DomainError) -> int:
    return STATUS_BY_KIND[error.kind]


def domain_error_for_status(status_code: int, message: str, *, code: str, param: str | None = None) -> DomainError:
    """The domain error a stored HTTP status stands for (a job that failed answers as the request would have)."""
    error_class = ERROR_CLASS_BY_KIND[_KIND_BY_STATUS.get(status_code, ErrorKind.INTERNAL)]
    return error_class(message, code=code, param=param)


def domain_error_body(error: DomainError) -> dict[str, Any]:
    """OpenAI's error object for ``error`` (an SSE stream's error event uses it too)."""
    return error_body(
        message=error.message, code=error.code, status_code=status_of(error), param=error.param, details=error.details
    )


def legacy_error_body(body: dict[str, Any], *, status_code: int) -> dict[str, Any]:
    """TigerBot's legacy envelope around an OpenAI error body: ``{"code", "msg", "data": {"error"}}``."""
    return {"code": status_code, "msg": body["error"]["message"], "data": body}


def error_body(
    *, message: str, code: str, status_code: int, param: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``details`` (e.g. per-line errors of an upload) rides along in the error object, after the four keys."""
    error = {"message": message, "type": _TYPE_BY_STATUS.get(status_code, "api_error"), "param": param, "code": code}
    return {"error": {**error, **details} if details else error}


def first_validation_error(detail: Any, path: str = "") -> tuple[str | None, str, str]:
    """Walks DRF's nested error detail to the first leaf: (param path, message, code)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # ListField errors are keyed by item index
                return first_validation_error(value, f"{path}[{key}]")
            sub = key if key != "non_field_errors" else ""
            return first_validation_error(value, f"{path}.{sub}" if path and sub else (sub or path))
    if isinstance(detail, list) and detail:
        for index, value in enumerate(detail):
            if value:  # ListSerializer reports {} for valid items
                nested = isinstance(value, dict | list)
                return first_validation_error(value, f"{path}[{index}]" if nested else path)
    code = getattr(detail, "code", "invalid") or "invalid"
    return (path or None), str(detail), str(code)


def _from_validation_error(exc: exceptions.ValidationError) -> tuple[str | None, str, str]:
    param, message, code = first_validation_error(exc.detail)
    message = f"{param}: {message}" if param else message
    return param, message, "invalid_request" if code in ("invalid", "required", "null", "blank") else code


# A database, cache or broker that cannot be reached (restarting, failing over): a 503 to retry, not a bug.
OUTAGES = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    DatabaseOperationalError,
    DatabaseInterfaceError,
    BrokerOperationalError,
)
OUTAGE_RETRY_AFTER_S = 5


def outage_error(exc: Exception) -> Unavailable:
    """The 503 that one of ``OUTAGES`` stands for (logged at warning: an outage, not a bug)."""
    logger.warning("backing service unavailable: %s: %s", type(exc).__name__, exc)
    return Unavailable(
        "A backing service (database, cache or broker) is unavailable; retry shortly.",
        retry_after_s=OUTAGE_RETRY_AFTER_S,
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, OUTAGES):
        exc = outage_error(exc)
    elif isinstance(exc, Http404):
        exc = NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.messages)

    if isinstance(exc, DomainError):
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else {}
        return Response(domain_error_body(exc), status=status_of(exc), headers=headers)
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: let Django log it and answer through handler500

    headers = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if isinstance(exc, exceptions.Throttled):
        wait: float | None = exc.wait  # type: ignore[attr-defined]  # djangorestframework-stubs omit Throttled.wait
        if wait is not None:
            headers["Retry-After"] = str(max(1, int(wait + 0.999)))

    param: str | None = None
    if isinstance(exc, exceptions.ValidationError):
        param, message, code = _from_validation_error(exc)
    else:
        codes = exc.get_codes()
        drf_code = codes if isinstance(codes, str) else exc.default_code
        code = _CODE_BY_DRF_CODE.get(drf_code, drf_code)
        detail = str(exc.detail) if not isinstance(exc.detail, dict | list) else str(exc.default_detail)
        message = _MESSAGE_BY_CODE.get(code, detail)
        if code == "invalid_json":
            message = f"Malformed request body: {detail}"
            if "json" not in getattr(context.get("request"), "content_type", "json"):
                code = "invalid_body"  # a multipart or form body that does not parse
    body = error_body(message=message, code=code, status_code=exc.status_code, param=param)
    return Response(body, status=exc.status_code, headers=headers)


_CODE_BY_DRF_CODE = {
    "not_authenticated": "missing_api_key",
    "authentication_failed": "invalid_api_key",
    "throttled": "rate_limited",
    "parse_error": "invalid_json",
}
_MESSAGE_BY_CODE = {
    "missing_api_key": "Missing API key: send it as 'Authorization: Bearer <API_KEY>'.",
}


def json_404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    body = error_body(message=f"No route for {request.path}.", code="not_found", status_code=404)
    return JsonResponse(body, status=404)


def json_500(request: HttpRequest) -> JsonResponse:
    body = error_body(message="Internal server error.", code="internal_error", status_code=500)
    return JsonResponse(body, status=500)


def json_400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body(message="Bad request.", code="invalid_request", status_code=400), status=400)


def json_403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    body = error_body(message="Forbidden.", code="permission_denied", status_code=403)
    return JsonResponse(body, status=403)
