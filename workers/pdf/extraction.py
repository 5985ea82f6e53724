"""The pypdf work itself: open (and unlock) a document, count its pages, extract their text.

Meant to run only inside the limited child process (``child.py``): on a hostile file pypdf can loop,
recurse or allocate without bound, and only the child's limits contain that. Every pypdf failure is
turned into a result here, except ``MemoryError``, which the child reports on its own.
"""

from __future__ import annotations

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError

from workers.pdf.page_ranges import PageRangeError, parse_page_ranges, select_pages
from workers.pdf.result import (
    EXTRACTION_ERROR,
    NO_TEXT_LAYER,
    ErrorCode,
    PageText,
    PdfInfo,
    PdfMetadata,
    PdfResult,
    Status,
)

_REASON_CHARS = 500


class _Refusal(Exception):
    def __init__(
        self, code: ErrorCode, message: str, *, encrypted: bool = False, page_count: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.encrypted = encrypted
        self.page_count = page_count


def extract_document(*, path: str, password: str | None, pages: str | None, layout: bool) -> PdfResult:
    try:
        reader = _open(path=path, password=password)
        page_count = _page_count(reader)
        selected = _select(spec=pages, page_count=page_count, encrypted=reader.is_encrypted)
    except _Refusal as refusal:
        return PdfResult.failure(
            refusal.code, refusal.message, page_count=refusal.page_count, encrypted=refusal.encrypted
        )
    return PdfResult(
        status=Status.SUCCEEDED,
        page_count=page_count,
        pages=[_extract_page(reader=reader, number=number, layout=layout) for number in selected],
        metadata=_metadata(reader),
    )


def inspect_document(*, path: str, password: str | None) -> PdfInfo:
    try:
        reader = _open(path=path, password=password)
        page_count = _page_count(reader)
    except _Refusal as refusal:
        return PdfInfo.failure(refusal.code, refusal.message, encrypted=refusal.encrypted)
    return PdfInfo(status=Status.SUCCEEDED, page_count=page_count, encrypted=reader.is_encrypted)


def _open(*, path: str, password: str | None) -> PdfReader:
    try:
        # Without a password pypdf already tries the empty one, which opens documents that are
        # encrypted only to restrict permissions.
        reader = PdfReader(path)
    except MemoryError:
        raise
    except OSError as exc:
        raise _Refusal(ErrorCode.FILE_UNREADABLE, f"cannot read the file: {exc.strerror or exc}") from exc
    except Exception as exc:
        raise _Refusal(_open_failure_code(exc), _reason(exc)) from exc
    if reader.is_encrypted:
        _unlock(reader=reader, password=password)
    return reader


def _open_failure_code(exc: Exception) -> ErrorCode:
    """pypdf raises ``NotImplementedError`` both for security handlers it lacks and for unsupported
    stream filters while parsing, so the module that raised it tells the two apart."""
    if isinstance(exc, DependencyError):
        return ErrorCode.UNSUPPORTED_ENCRYPTION
    if isinstance(exc, NotImplementedError):
        frame = exc.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        if frame is not None and frame.tb_frame.f_globals.get("__name__") == "pypdf._encryption":
            return ErrorCode.UNSUPPORTED_ENCRYPTION
    return ErrorCode.INVALID_PDF


def _unlock(*, reader: PdfReader, password: str | None) -> None:
    try:
        opened_as = reader.decrypt(password or "")
    except MemoryError:
        raise
    except (DependencyError, NotImplementedError) as exc:
        raise _Refusal(ErrorCode.UNSUPPORTED_ENCRYPTION, _reason(exc), encrypted=True) from exc
    except Exception as exc:
        raise _Refusal(ErrorCode.INVALID_PDF, _reason(exc), encrypted=True) from exc
    if opened_as is not PasswordType.NOT_DECRYPTED:
        return
    if password:
        raise _Refusal(ErrorCode.INVALID_PASSWORD, "the password does not open this document", encrypted=True)
    raise _Refusal(ErrorCode.PASSWORD_REQUIRED, "the document is encrypted and needs a password", encrypted=True)


def _page_count(reader: PdfReader) -> int:
    try:
        return len(reader.pages)
    except MemoryError:
        raise
    except Exception as exc:
        raise _Refusal(ErrorCode.INVALID_PDF, _reason(exc), encrypted=reader.is_encrypted) from exc


def _select(*, spec: str | None, page_count: int, encrypted: bool) -> list[int]:
    if spec is None:
        return list(range(1, page_count + 1))
    try:
        return select_pages(ranges=parse_page_ranges(spec=spec), page_count=page_count)
    except PageRangeError as exc:
        raise _Refusal(ErrorCode.INVALID_PAGE_RANGE, str(exc), encrypted=encrypted, page_count=page_count) from exc


def _extract_page(*, reader: PdfReader, number: int, layout: bool) -> PageText:
    try:
        raw = reader.pages[number - 1].extract_text(extraction_mode="layout" if layout else "plain")
    except MemoryError:
        raise
    except Exception as exc:
        return PageText(page=number, text="", notes=[f"{EXTRACTION_ERROR}: {_reason(exc)}"])
    text = _clean(raw)
    if not text.strip():
        return PageText(page=number, text="", notes=[NO_TEXT_LAYER])
    return PageText(page=number, text=text)


def _metadata(reader: PdfReader) -> PdfMetadata:
    encrypted = reader.is_encrypted
    try:
        info = reader.metadata
        if info is None:
            return PdfMetadata(encrypted=encrypted)
        return PdfMetadata(
            title=_optional_text(info.title),
            author=_optional_text(info.author),
            producer=_optional_text(info.producer),
            encrypted=encrypted,
        )
    except MemoryError:
        raise
    except Exception:
        # Metadata is a nicety: a broken /Info dictionary must not cost the document its text.
        return PdfMetadata(encrypted=encrypted)


def _optional_text(value: object) -> str | None:
    text = "" if value is None else _clean(str(value)).strip()
    return text or None


def _clean(text: str) -> str:
    """NUL characters and lone surrogates (from broken font maps) are rejected by PostgreSQL text
    columns and by UTF-8 encoders downstream; form feeds are reserved as the page separator."""
    text = text.replace("\x00", "").replace("\f", "\n")
    return text.encode("utf-8", errors="replace").decode("utf-8")


def _reason(exc: BaseException) -> str:
    detail = str(exc)
    reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return reason[:_REASON_CHARS]
