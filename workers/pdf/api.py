"""The public entry points: each call runs pypdf in its own limited child process (``isolation.py``),
so a pathological PDF can neither hang nor kill the caller; every outcome is a result, never an
exception."""

from __future__ import annotations

import os
from collections.abc import Callable

from workers.pdf.isolation import ChildFailure, run_in_child
from workers.pdf.page_ranges import PageRangeError, parse_page_ranges
from workers.pdf.result import ErrorCode, PdfInfo, PdfResult


def extract_pdf(
    *,
    path: str | os.PathLike[str],
    password: str | None = None,
    pages: str | None = None,
    layout: bool = False,
    timeout_s: float = 60,
    memory_mb: int = 1024,
    on_start: Callable[[int], None] | None = None,
) -> PdfResult:
    """Extract the text of ``pages`` (e.g. ``"1-3,5"``; all pages when None). ``password`` may be
    the user or the owner password and is ignored for unencrypted files. ``layout`` keeps the page's
    visual arrangement (columns, indentation) instead of reading order. ``on_start`` is told the
    child's PID, for callers that track or test the process; if it raises, the child is killed and
    the exception propagates. Invalid limits raise ``ValueError`` (a programming error)."""
    _check_limits(timeout_s=timeout_s, memory_mb=memory_mb)
    if pages is not None:
        try:
            parse_page_ranges(spec=pages)
        except PageRangeError as exc:
            return PdfResult.failure(ErrorCode.INVALID_PAGE_RANGE, str(exc))
    request = {
        "operation": "extract",
        "path": os.path.abspath(path),
        "password": password,
        "pages": pages,
        "layout": layout,
    }
    outcome = run_in_child(request=request, timeout_s=timeout_s, memory_mb=memory_mb, on_start=on_start)
    if isinstance(outcome, ChildFailure):
        return PdfResult.failure(outcome.code, outcome.message)
    return PdfResult.from_dict(outcome)


def inspect_pdf(
    *,
    path: str | os.PathLike[str],
    password: str | None = None,
    timeout_s: float = 15,
    memory_mb: int = 512,
    on_start: Callable[[int], None] | None = None,
) -> PdfInfo:
    """Page count and encryption without extracting any text, for upload-time limits. It opens the
    document and walks its page tree, which a hostile file can make slow, so it gets the same child
    process protection as ``extract_pdf``."""
    _check_limits(timeout_s=timeout_s, memory_mb=memory_mb)
    request = {"operation": "inspect", "path": os.path.abspath(path), "password": password}
    outcome = run_in_child(request=request, timeout_s=timeout_s, memory_mb=memory_mb, on_start=on_start)
    if isinstance(outcome, ChildFailure):
        return PdfInfo.failure(outcome.code, outcome.message)
    return PdfInfo.from_dict(outcome)


def _check_limits(*, timeout_s: float, memory_mb: int) -> None:
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    if memory_mb <= 0:
        raise ValueError(f"memory_mb must be positive, got {memory_mb}")
