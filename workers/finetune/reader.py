"""Streams raw records out of an uploaded JSON Lines, JSON array or CSV file without ever holding it whole.

The container is detected from the content: a first non-blank ``[`` is a JSON array, ``{`` is JSON Lines,
anything else must be a CSV whose header names known columns. Whole-file problems raise DatasetError; a record
that cannot be parsed is yielded with ``error`` set and the line it starts on, so validation can list it and
go on.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from workers.finetune.errors import DatasetError, DatasetErrorCode

Container = Literal["jsonl", "json", "csv"]

CHUNK_CHARS = 1 << 16
# One record may not exceed this; it bounds memory when a JSON array is malformed or a JSONL line never ends.
DEFAULT_MAX_RECORD_CHARS = 8 << 20

# Columns that identify a CSV as a dataset, and columns whose cells hold JSON (lists of turns or tools).
CSV_KNOWN_COLUMNS = frozenset({"instruction", "input", "output", "system", "history", "conversations", "messages"})
CSV_JSON_COLUMNS = frozenset({"history", "conversations", "messages", "tools"})
_CSV_DELIMITERS = (",", "\t", ";")

_BINARY_SIGNATURES = (
    b"PK\x03\x04",  # zip, xlsx, docx
    b"\x89PNG",
    b"%PDF",
    b"GIF8",
    b"\xff\xd8\xff",  # jpeg
    b"PAR1",  # parquet
    b"\x1f\x8b",  # gzip
    b"BZh",
    b"\xfd7zXZ",
    b"7z\xbc\xaf",
    b"SQLite format 3",
    b"\x80\x04",  # pickle (protocol 4)
)
# UTF-16/32 byte-order marks (the UTF-32-LE one starts like UTF-16-LE); such files are text, just not UTF-8.
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_UTF8_BOM = "\ufeff"
_SNIFF_BYTES = 8192
_NON_SPACE = re.compile(r"\S")


@dataclass(frozen=True)
class RawRecord:
    """One record as parsed from the file: ``value`` when it parsed, ``error`` (and ``field``) when not."""

    line: int
    value: Any = None
    error: str | None = None
    field: str | None = None


def check_file(*, path: str | Path, max_bytes: int) -> None:
    """Reject files that are missing, too large, empty or binary before any parsing starts."""
    file = Path(path)
    if not file.is_file():
        raise DatasetError(DatasetErrorCode.INVALID_FILE, f"{file.name} is not a regular file")
    size = file.stat().st_size
    if size > max_bytes:
        raise DatasetError(DatasetErrorCode.FILE_TOO_LARGE, f"file is {size} bytes, the limit is {max_bytes} bytes")
    if size == 0:
        raise DatasetError(DatasetErrorCode.EMPTY_FILE, "file is empty")
    with file.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if head.startswith(_WIDE_BOMS):
        raise DatasetError(DatasetErrorCode.INVALID_ENCODING, "file is UTF-16/UTF-32 encoded; save it as UTF-8")
    if head.startswith(_BINARY_SIGNATURES) or b"\x00" in head:
        raise DatasetError(DatasetErrorCode.INVALID_FILE, "file is binary, not a text dataset")


class _TextChunks:
    """Decodes a file as strict UTF-8 chunk by chunk, naming the line of the first bad byte or NUL."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lines_before = 0

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        first = True
        with self._path.open("rb") as handle:
            while True:
                data = handle.read(CHUNK_CHARS)
                try:
                    text = decoder.decode(data, final=not data)
                except UnicodeDecodeError as exc:
                    line = self._lines_before + exc.object[: exc.start].count(b"\n") + 1
                    raise DatasetError(
                        DatasetErrorCode.INVALID_ENCODING, f"line {line}: file is not valid UTF-8"
                    ) from exc
                if first and text.startswith(_UTF8_BOM):
                    text = text[1:]
                first = False
                nul = text.find("\x00")
                if nul >= 0:
                    line = self._lines_before + text.count("\n", 0, nul) + 1
                    raise DatasetError(DatasetErrorCode.INVALID_FILE, f"line {line}: NUL byte in a text file")
                self._lines_before += text.count("\n")
                if text:
                    yield text
                if not data:
                    return


class _Buffer:
    """A sliding text window over the chunks; ``line`` is the 1-based line number at ``pos``."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self.text = ""
        self.pos = 0
        self.line = 1
        self.eof = False

    def more(self, *, at_least: int = 1) -> bool:
        """Append at least ``at_least`` more characters unless the file ends; False when nothing was added."""
        added = 0
        parts = [self.text]
        while added < at_least:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.eof = True
                break
            parts.append(chunk)
            added += len(chunk)
        self.text = "".join(parts)
        return added > 0

    def advance(self, end: int) -> None:
        """Move to ``end``; indices into ``text`` taken before this call are invalid after it."""
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end
        if self.pos > CHUNK_CHARS and self.pos > len(self.text) // 2:
            self.text = self.text[self.pos :]
            self.pos = 0

    def drop(self) -> None:
        """Forget the buffered text (used to skip an overlong line without holding it)."""
        self.text = ""
        self.pos = 0

    def skip_space(self) -> bool:
        """Move past whitespace; False when the file ends first."""
        while True:
            found = _NON_SPACE.search(self.text, self.pos)
            self.advance(found.start() if found else len(self.text))
            if found:
                return True
            if not self.more():
                return False

    def line_of(self, index: int) -> int:
        return self.line + self.text.count("\n", self.pos, index)


class RecordReader:
    """Iterates the records of one dataset file; ``container`` is known once iteration has started."""

    def __init__(self, *, path: str | Path, max_bytes: int, max_record_chars: int = DEFAULT_MAX_RECORD_CHARS):
        self._path = Path(path)
        self._max_bytes = max_bytes
        self._max_record_chars = max_record_chars
        self.container: Container | None = None

    def __iter__(self) -> Iterator[RawRecord]:
        check_file(path=self._path, max_bytes=self._max_bytes)
        buffer = _Buffer(iter(_TextChunks(self._path)))
        if not buffer.skip_space():
            raise DatasetError(DatasetErrorCode.EMPTY_FILE, "file contains only whitespace")
        first = buffer.text[buffer.pos]
        if first == "[":
            self.container = "json"
            yield from self._json_array(buffer)
        elif first == "{":
            self.container = "jsonl"
            yield from self._json_lines(buffer)
        else:
            self.container = "csv"
            yield from self._csv(buffer)

    def _lines(self, buffer: _Buffer) -> Iterator[tuple[int, str | None]]:
        """(line number, text) per physical line; text is None for a line longer than the record limit."""
        while True:
            end = buffer.text.find("\n", buffer.pos)
            while end < 0 and not buffer.eof and len(buffer.text) - buffer.pos <= self._max_record_chars:
                searched = len(buffer.text)
                buffer.more()
                end = buffer.text.find("\n", searched)
            if end < 0 and not buffer.eof:
                yield buffer.line, None
                buffer.drop()
                while end < 0:
                    if not buffer.more():
                        return
                    end = buffer.text.find("\n")
                    if end < 0:
                        buffer.drop()
                buffer.pos = end + 1
                buffer.line += 1
                continue
            stop = len(buffer.text) if end < 0 else end + 1
            if stop - buffer.pos > self._max_record_chars:
                yield buffer.line, None
            elif stop > buffer.pos:
                yield buffer.line, buffer.text[buffer.pos : stop]
            buffer.advance(stop)
            if end < 0:
                return

    def _json_lines(self, buffer: _Buffer) -> Iterator[RawRecord]:
        for line, text in self._lines(buffer):
            if text is None:
                yield RawRecord(line, error=f"record is longer than {self._max_record_chars} characters")
                continue
            if not text.strip():
                continue
            try:
                yield RawRecord(line, value=json.loads(text))
            except json.JSONDecodeError as exc:
                yield RawRecord(line, error=f"invalid JSON: {exc.msg} (column {exc.colno})")

    def _json_array(self, buffer: _Buffer) -> Iterator[RawRecord]:
        decoder = json.JSONDecoder()
        buffer.advance(buffer.pos + 1)
        first = True
        while True:
            if not buffer.skip_space():
                yield RawRecord(buffer.line, error="invalid JSON: the array is never closed with ']'")
                return
            char = buffer.text[buffer.pos]
            if char == "]" and first:
                buffer.advance(buffer.pos + 1)
                break
            if not first:
                if char == "]":
                    buffer.advance(buffer.pos + 1)
                    break
                if char != ",":
                    yield RawRecord(buffer.line, error="invalid JSON: expected ',' or ']' between records")
                    return
                buffer.advance(buffer.pos + 1)
                if not buffer.skip_space():
                    yield RawRecord(buffer.line, error="invalid JSON: the array is never closed with ']'")
                    return
            first = False
            record = self._decode_one(buffer, decoder)
            yield record
            if record.error is not None:
                return
        if buffer.skip_space():
            yield RawRecord(buffer.line, error="invalid JSON: unexpected content after the closing ']'")

    def _decode_one(self, buffer: _Buffer, decoder: json.JSONDecoder) -> RawRecord:
        line = buffer.line
        while True:
            try:
                value, end = decoder.raw_decode(buffer.text, buffer.pos)
            except json.JSONDecodeError as exc:
                if buffer.eof or len(buffer.text) - buffer.pos > self._max_record_chars:
                    return RawRecord(buffer.line_of(exc.pos), error=f"invalid JSON: {exc.msg}")
                # Probably just cut off by the chunk boundary: read as much again and retry (amortised O(n)).
                buffer.more(at_least=len(buffer.text) - buffer.pos)
                continue
            # A number or literal that touches the end of the buffer may continue in the next chunk.
            if end == len(buffer.text) and not buffer.eof and buffer.more():
                continue
            buffer.advance(end)
            return RawRecord(line, value=value)

    def _csv(self, buffer: _Buffer) -> Iterator[RawRecord]:
        # csv may read several physical lines per row (quoted newlines): remember where each row began.
        row_start: list[int | None] = [None]
        overlong: list[int] = []

        def physical_lines() -> Iterator[str]:
            for number, text in self._lines(buffer):
                if row_start[0] is None:
                    row_start[0] = number
                if text is None:
                    overlong.append(number)
                yield "\n" if text is None else text

        source = physical_lines()
        header_text = next(source)
        row_start[0] = None
        delimiter = _sniff_delimiter(header_text)
        header = [name.strip().lower() for name in next(csv.reader([header_text], delimiter=delimiter))]
        if not CSV_KNOWN_COLUMNS.intersection(header):
            raise DatasetError(
                DatasetErrorCode.UNKNOWN_FORMAT,
                "not JSON Lines, a JSON array, or a CSV whose header names instruction/input/output columns",
            )
        reader = csv.reader(source, delimiter=delimiter)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RawRecord(row_start[0] or 0, error=f"CSV: {exc}")
                return
            line = row_start[0] or 0
            row_start[0] = None
            if overlong:
                yield RawRecord(overlong[0], error=f"record is longer than {self._max_record_chars} characters")
                overlong.clear()
            elif not any(cell.strip() for cell in row):
                continue
            elif len(row) != len(header):
                yield RawRecord(line, error=f"expected {len(header)} columns, got {len(row)}")
            else:
                yield _csv_record(line, header, row)


def _sniff_delimiter(header_text: str) -> str:
    def known_columns(delimiter: str) -> int:
        return len(CSV_KNOWN_COLUMNS.intersection(c.strip().lower() for c in header_text.split(delimiter)))

    return max(_CSV_DELIMITERS, key=known_columns)


def _csv_record(line: int, header: list[str], row: list[str]) -> RawRecord:
    value: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=True):
        if not cell.strip() and name != "output":
            continue
        if name in CSV_JSON_COLUMNS:
            try:
                value[name] = json.loads(cell)
            except json.JSONDecodeError as exc:
                return RawRecord(line, error=f"cell is not valid JSON: {exc.msg}", field=name)
        else:
            value[name] = cell
    return RawRecord(line, value=value)
