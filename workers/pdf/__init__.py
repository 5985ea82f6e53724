"""PDF to text with pypdf, each document in its own time- and memory-limited child process.

Outcomes (``PdfResult.status`` / ``error_code``):

- ``succeeded``: text per selected page. A page without extractable text (a scan, an image) has
  empty text and the note ``no_text_layer``; a page pypdf fails on has empty text and the note
  ``extraction_error: <reason>``, and the rest of the document is kept. Documents encrypted only to
  restrict permissions (empty user password) open without one; ``metadata.encrypted`` tells.
- ``failed`` with ``error_code``:
  ``password_required`` (encrypted, no password given), ``invalid_password`` (the password opens
  nothing), ``unsupported_encryption`` (a security handler pypdf lacks, e.g. certificates),
  ``invalid_pdf`` (not a PDF, or damaged beyond pypdf's repair; pypdf's reason is in the message),
  ``invalid_page_range`` (bad syntax or pages beyond the document), ``file_unreadable`` (missing or
  unreadable file), ``timeout`` (the wall-time limit ran out; the child was killed),
  ``memory_limit`` (the address-space limit was hit), ``worker_crashed`` (the child died some other
  way, e.g. killed by a signal, which the message names; the kernel's OOM killer shows as SIGKILL).

``PdfResult.text`` joins the page texts with a form feed, so ``text.split("\\f")`` gives them back.
"""

from workers.pdf.api import extract_pdf, inspect_pdf
from workers.pdf.cli import main
from workers.pdf.page_ranges import PageRange, PageRangeError, parse_page_ranges, select_pages
from workers.pdf.result import (
    EXTRACTION_ERROR,
    NO_TEXT_LAYER,
    PAGE_SEPARATOR,
    ErrorCode,
    PageText,
    PdfInfo,
    PdfMetadata,
    PdfResult,
    Status,
)

__all__ = [
    "EXTRACTION_ERROR",
    "NO_TEXT_LAYER",
    "PAGE_SEPARATOR",
    "ErrorCode",
    "PageRange",
    "PageRangeError",
    "PageText",
    "PdfInfo",
    "PdfMetadata",
    "PdfResult",
    "Status",
    "extract_pdf",
    "inspect_pdf",
    "main",
    "parse_page_ranges",
    "select_pages",
]
