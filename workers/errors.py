"""Domain errors: what went wrong, in the platform's words, with no notion of HTTP.

Services (``apps/``) and the ML runtime (``workers/``) raise these; ``apps.core.errors`` is the one place that maps
an error's ``kind`` to a status code and to the two wire shapes (OpenAI's error object and TigerBot's legacy
envelope). A management command, a Celery task or a notebook catches them like any other exception.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ErrorKind(StrEnum):
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"
    UPSTREAM_FAILED = "upstream_failed"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    INTERNAL = "internal"


class DomainError(Exception):
    """An error with a stable machine-readable ``code`` and, for input errors, the offending ``param``.

    ``details`` (e.g. per-line errors of an upload) travel with it; ``retry_after_s`` says when a retry may work.
    """

    kind: ClassVar[ErrorKind] = ErrorKind.INVALID
    default_code: ClassVar[str] = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.details = details
        self.retry_after_s = retry_after_s

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form, to cross a process boundary (a Celery result) and come back with ``from_dict``."""
        return {
            "kind": self.kind.value,
            "message": self.message,
            "code": self.code,
            "param": self.param,
            "retry_after_s": self.retry_after_s,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> DomainError:
        error_class = ERROR_CLASS_BY_KIND[ErrorKind(data.get("kind", ErrorKind.INTERNAL))]
        return error_class(
            str(data["message"]),
            code=data.get("code"),
            param=data.get("param"),
            retry_after_s=data.get("retry_after_s"),
        )


class InvalidRequest(DomainError):
    pass


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND
    default_code = "not_found"


class Conflict(DomainError):
    kind = ErrorKind.CONFLICT
    default_code = "conflict"


class Forbidden(DomainError):
    kind = ErrorKind.FORBIDDEN
    default_code = "permission_denied"


class PayloadTooLarge(DomainError):
    kind = ErrorKind.TOO_LARGE
    default_code = "file_too_large"


class Unavailable(DomainError):
    kind = ErrorKind.UNAVAILABLE
    default_code = "service_unavailable"


class UpstreamFailed(DomainError):
    kind = ErrorKind.UPSTREAM_FAILED
    default_code = "upstream_error"


class UpstreamTimeout(DomainError):
    kind = ErrorKind.UPSTREAM_TIMEOUT
    default_code = "upstream_timeout"


class InternalFailure(DomainError):
    kind = ErrorKind.INTERNAL
    default_code = "internal_error"


ERROR_CLASS_BY_KIND: dict[ErrorKind, type[DomainError]] = {
    error_class.kind: error_class
    for error_class in (
        InvalidRequest,
        NotFound,
        Conflict,
        Forbidden,
        PayloadTooLarge,
        Unavailable,
        UpstreamFailed,
        UpstreamTimeout,
        InternalFailure,
    )
}
