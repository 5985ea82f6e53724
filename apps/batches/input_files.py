"""Batch input files: JSONL, one request a line (``{"custom_id", "method": "POST", "url", "body"}``).

Only what makes the whole file unusable refuses an upload (empty, not UTF-8, too large, too many lines, no usable
line at all); a single bad line is reported when the batch runs, in its error file, and the other lines run.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

MAX_CUSTOM_ID_CHARS = 512
# How many examples of bad lines and duplicate custom_ids an upload's summary keeps.
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class BatchLine:
    number: int
    custom_id: str
    url: str
    body: dict[str, Any]


@dataclass(frozen=True)
class LineError:
    number: int
    custom_id: str | None
    code: str
    message: str


class BatchFileError(Exception):
    """The whole file is unusable."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class InputFileSummary:
    total: int = 0
    valid: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    duplicate_custom_ids: list[str] = field(default_factory=list)
    urls: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "valid": self.valid,
            "error_count": self.error_count,
            "errors": self.errors,
            "duplicate_custom_ids": self.duplicate_custom_ids,
            "urls": self.urls,
        }


def read_lines(stream: IO[bytes], *, max_lines: int | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every non-blank line, numbered from 1 as in the file."""
    count = 0
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BatchFileError(
                f"Line {number} is not UTF-8 text; batch files must be UTF-8 JSONL.", code="invalid_encoding"
            ) from None
        if not text.strip():
            continue
        count += 1
        if max_lines is not None and count > max_lines:
            raise BatchFileError(f"The file has more than {max_lines} requests (lines).", code="too_many_lines")
        yield number, text


def parse_line(*, number: int, text: str, urls: Collection[str]) -> BatchLine | LineError:
    """One request line, checked; ``urls`` are the endpoints it may name."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return LineError(number, None, "invalid_json_line", f"Line {number} is not valid JSON: {exc}.")
    if not isinstance(data, dict):
        return LineError(number, None, "invalid_request", f"Line {number} is not a JSON object.")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID_CHARS:
        return LineError(
            number,
            None,
            "missing_custom_id",
            f"Line {number}: custom_id must be a non-empty string of at most {MAX_CUSTOM_ID_CHARS} characters.",
        )
    if data.get("method") != "POST":
        return LineError(number, custom_id, "invalid_method", f"Line {number}: method must be 'POST'.")
    url = data.get("url")
    if not isinstance(url, str) or url not in urls:
        return LineError(number, custom_id, "invalid_url", f"Line {number}: url {url!r} is not one of {sorted(urls)}.")
    body = data.get("body")
    if not isinstance(body, dict):
        return LineError(number, custom_id, "invalid_body", f"Line {number}: body must be a JSON object.")
    return BatchLine(number=number, custom_id=custom_id, url=url, body=body)


def summarize_input_file(*, lines: Iterable[tuple[int, str]], urls: Collection[str]) -> InputFileSummary:
    """Counts, examples of bad lines and duplicate custom_ids; raises ``BatchFileError`` for an unusable file."""
    summary = InputFileSummary()
    seen: set[str] = set()
    for number, text in lines:
        summary.total += 1
        parsed = parse_line(number=number, text=text, urls=urls)
        if isinstance(parsed, LineError):
            summary.error_count += 1
            if len(summary.errors) < MAX_EXAMPLES:
                summary.errors.append({"line": number, "code": parsed.code, "message": parsed.message})
            continue
        summary.valid += 1
        summary.urls[parsed.url] = summary.urls.get(parsed.url, 0) + 1
        if parsed.custom_id in seen and len(summary.duplicate_custom_ids) < MAX_EXAMPLES:
            summary.duplicate_custom_ids.append(parsed.custom_id)
        seen.add(parsed.custom_id)
    if summary.total == 0:
        raise BatchFileError("The file has no requests (it is empty).", code="empty_file")
    if summary.valid == 0:
        first = summary.errors[0]["message"] if summary.errors else ""
        raise BatchFileError(
            f"None of the file's {summary.total} lines is a usable request. {first}", code="no_valid_lines"
        )
    return summary
