"""One error shape everywhere: OpenAI's ``{"error": {"message", "type", "param", "code"}}``.

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


class ApiError(exceptions.APIException):
    """An error with a stable ``code`` and, for input errors, the offending ``param``."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(detail=message, code=code or self.default_code)
        self.error_code = code or self.default_code
        self.param = param
        self.details = details
        self.retry_after_s = retry_after_s
        if status_code is not None:
            self.status_code = status_code


class NotFoundError(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"


class ConflictError(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


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
_OUTAGES = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    DatabaseOperationalError,
    DatabaseInterfaceError,
    BrokerOperationalError,
)
OUTAGE_RETRY_AFTER_S = 5


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, _OUTAGES):
        logger.warning("backing service unavailable: %s: %s", type(exc).__name__, exc)
        exc = ApiError(
            "A backing service (database, cache or broker) is unavailable; retry shortly.",
            code="service_unavailable",
            status_code=503,
            retry_after_s=OUTAGE_RETRY_AFTER_S,
        )
    elif isinstance(exc, Http404):
        exc = NotFoundError(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.messages)

    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: let Django log it and answer through handler500

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
    if isinstance(exc, ApiError) and exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)

    param: str | None = None
    details: dict[str, Any] | None = None
    if isinstance(exc, ApiError):
        message, code, param, details = str(exc.detail), exc.error_code, exc.param, exc.details
    elif isinstance(exc, exceptions.ValidationError):
        param, message, code = _from_validation_error(exc)
    else:
        codes = exc.get_codes()
        drf_code = codes if isinstance(codes, str) else exc.default_code
        code = _CODE_BY_DRF_CODE.get(drf_code, drf_code)
        detail = str(exc.detail) if not isinstance(exc.detail, dict | list) else str(exc.default_detail)
        message = _MESSAGE_BY_CODE.get(code, detail)
        if code == "invalid_json":
            message = f"Malformed request body: {detail}"
    body = error_body(message=message, code=code, status_code=exc.status_code, param=param, details=details)
    return Response(body, status=exc.status_code, headers=headers)


_CODE_BY_DRF_CODE = {
    "not_authenticated": "missing_api_key",
    "authentication_failed": "invalid_api_key",
    "throttled": "rate_limited",
    "parse_error": "invalid_json",
}
_MESSAGE_BY_CODE = {
    "missing_api_key": "Missing API key: send it as 'Authorization: Bearer <API_KEY>'.",
    "rate_limited": "Rate limit exceeded for this API key; retry after the number of seconds in Retry-After.",
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
