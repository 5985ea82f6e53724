"""What an extraction or an inspection hands back, as plain dataclasses that round-trip through JSON.

A failed result always carries one of the ``ErrorCode`` values and a human-readable message; a
succeeded one never does. ``PdfResult.text`` joins the page texts with a form feed (``"\\f"``), the
page separator ``pdftotext`` uses, so ``text.split("\\f")`` gives the page texts back in order (the
extractor replaces any form feed inside a page with a newline to keep that true).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

PAGE_SEPARATOR = "\f"
NO_TEXT_LAYER = "no_text_layer"
EXTRACTION_ERROR = "extraction_error"


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ErrorCode(StrEnum):
    PASSWORD_REQUIRED = "password_required"  # noqa: S105 - error codes, not secrets
    INVALID_PASSWORD = "invalid_password"  # noqa: S105
    UNSUPPORTED_ENCRYPTION = "unsupported_encryption"
    INVALID_PDF = "invalid_pdf"
    INVALID_PAGE_RANGE = "invalid_page_range"
    FILE_UNREADABLE = "file_unreadable"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    WORKER_CRASHED = "worker_crashed"


@dataclass(frozen=True, slots=True)
class PageText:
    """One page's text; ``page`` is 1-based. ``notes`` holds ``no_text_layer`` for a page without
    extractable text (scans, images) and ``extraction_error: <reason>`` for a page pypdf failed on."""

    page: int
    text: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"page": self.page, "text": self.text, "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageText:
        return cls(page=int(data["page"]), text=str(data["text"]), notes=[str(n) for n in data["notes"]])


@dataclass(frozen=True, slots=True)
class PdfMetadata:
    title: str | None = None
    author: str | None = None
    producer: str | None = None
    encrypted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "author": self.author, "producer": self.producer, "encrypted": self.encrypted}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PdfMetadata:
        return cls(
            title=data.get("title"),
            author=data.get("author"),
            producer=data.get("producer"),
            encrypted=bool(data.get("encrypted", False)),
        )


@dataclass(frozen=True, slots=True)
class PdfResult:
    """``page_count`` is the document's page count (known for some failures too, e.g. a page range
    out of bounds); ``pages`` holds only the selected pages, in document order."""

    status: Status
    error_code: ErrorCode | None = None
    error_message: str | None = None
    page_count: int | None = None
    pages: list[PageText] = field(default_factory=list)
    metadata: PdfMetadata = field(default_factory=PdfMetadata)

    @classmethod
    def failure(
        cls, code: ErrorCode, message: str, *, page_count: int | None = None, encrypted: bool = False
    ) -> PdfResult:
        return cls(
            status=Status.FAILED,
            error_code=code,
            error_message=message,
            page_count=page_count,
            metadata=PdfMetadata(encrypted=encrypted),
        )

    @property
    def failure_code(self) -> str:
        """The error code of a failed result (``succeeded`` is False exactly when it is set)."""
        if self.error_code is None:
            raise ValueError("a succeeded result has no error code")
        return self.error_code.value

    @property
    def succeeded(self) -> bool:
        return self.status is Status.SUCCEEDED

    @property
    def text(self) -> str:
        return PAGE_SEPARATOR.join(page.text for page in self.pages)

    def to_dict(self) -> dict[str, Any]:
        """``text`` is included for consumers that want the whole document; ``from_dict`` ignores it."""
        return {
            **_outcome_to_dict(self),
            "pages": [page.to_dict() for page in self.pages],
            "text": self.text,
            "metadata": self.metadata.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PdfResult:
        return cls(
            **_outcome_from_dict(data),
            pages=[PageText.from_dict(page) for page in data.get("pages", [])],
            metadata=PdfMetadata.from_dict(data.get("metadata", {})),
        )


@dataclass(frozen=True, slots=True)
class PdfInfo:
    """The cheap pre-check: ``page_count`` is None when it could not be read (e.g. password needed)."""

    status: Status
    error_code: ErrorCode | None = None
    error_message: str | None = None
    page_count: int | None = None
    encrypted: bool = False

    @classmethod
    def failure(
        cls, code: ErrorCode, message: str, *, page_count: int | None = None, encrypted: bool = False
    ) -> PdfInfo:
        return cls(
            status=Status.FAILED, error_code=code, error_message=message, page_count=page_count, encrypted=encrypted
        )

    @property
    def succeeded(self) -> bool:
        return self.status is Status.SUCCEEDED

    def to_dict(self) -> dict[str, Any]:
        return {
            **_outcome_to_dict(self),
            "encrypted": self.encrypted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PdfInfo:
        return cls(
            **_outcome_from_dict(data),
            encrypted=bool(data.get("encrypted", False)),
        )


def _outcome_to_dict(outcome: PdfResult | PdfInfo) -> dict[str, Any]:
    """The fields a result and an info share: the status, the error and the page count."""
    return {
        "status": outcome.status.value,
        "error_code": outcome.error_code.value if outcome.error_code else None,
        "error_message": outcome.error_message,
        "page_count": outcome.page_count,
    }


def _outcome_from_dict(data: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``_outcome_to_dict``, as keyword arguments."""
    return {
        "status": Status(data["status"]),
        "error_code": ErrorCode(data["error_code"]) if data.get("error_code") else None,
        "error_message": data.get("error_message"),
        "page_count": data.get("page_count"),
    }
