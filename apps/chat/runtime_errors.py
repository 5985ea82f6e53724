"""The runtime's typed errors as API errors, and as JSON for the trip back from a Celery worker."""

from __future__ import annotations

from typing import Any

from apps.core.errors import ApiError
from workers.runtime.errors import (
    EngineBusyError,
    GenerationFailedError,
    InputTooLongError,
    InvalidConstraintError,
    InvalidMessagesError,
    ModelLoadError,
    RuntimeErrorBase,
    UpstreamError,
    UpstreamTimeoutError,
)


def to_api_error(exc: Exception) -> ApiError:
    if isinstance(exc, InputTooLongError):
        return ApiError(str(exc), code="context_length_exceeded", param=exc.param)
    if isinstance(exc, InvalidConstraintError):
        return ApiError(str(exc), code="invalid_schema", param=exc.param)
    if isinstance(exc, InvalidMessagesError):
        return ApiError(str(exc), code="invalid_messages", param=exc.param)
    if isinstance(exc, UpstreamTimeoutError):
        return ApiError(
            f"The upstream model server did not answer in time: {exc}", code="upstream_timeout", status_code=504
        )
    if isinstance(exc, UpstreamError):
        return ApiError(f"The upstream model server failed: {exc.message}", code="upstream_error", status_code=502)
    if isinstance(exc, EngineBusyError):
        return ApiError(
            f"The model is at capacity: {exc}",
            code="model_overloaded",
            status_code=503,
            retry_after_s=exc.retry_after_s,
        )
    if isinstance(exc, GenerationFailedError):
        return ApiError(f"Generation failed in the serving engine: {exc}", code="engine_failed", status_code=503)
    if isinstance(exc, ModelLoadError):
        return ApiError(f"The model could not be loaded: {exc}", code="model_unavailable", status_code=503)
    if isinstance(exc, ApiError):
        return exc
    return ApiError(f"Generation failed: {type(exc).__name__}: {exc}", code="generation_failed", status_code=500)


def error_to_dict(exc: Exception) -> dict[str, Any]:
    api_error = to_api_error(exc)
    return {
        "message": str(api_error.detail),
        "code": api_error.error_code,
        "param": api_error.param,
        "status": api_error.status_code,
        "retry_after_s": api_error.retry_after_s,
    }


def error_from_dict(data: dict[str, Any]) -> ApiError:
    return ApiError(
        data["message"],
        code=data["code"],
        param=data.get("param"),
        status_code=data["status"],
        retry_after_s=data.get("retry_after_s"),
    )


RUNTIME_ERRORS = (RuntimeErrorBase, ValueError)
