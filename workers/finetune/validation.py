"""Upload validation: one streaming pass over a dataset file; per-record errors name the line and field."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.finetune.errors import DatasetError, DatasetErrorCode
from workers.finetune.formats import RecordError, RecordFormat, detect_record_format, normalise_record
from workers.finetune.reader import Container, RecordReader
from workers.serialization import DictSerializable

DEFAULT_MAX_ERRORS = 20


@dataclass(frozen=True)
class RecordIssue(DictSerializable):
    line: int
    field: str | None
    message: str


@dataclass
class ValidationResult(DictSerializable):
    """``valid`` means the file can be used as uploaded: no whole-file ``code`` and no record error at all.

    ``errors`` lists the first ``max_errors`` record problems; ``error_count`` counts all of them.
    """

    valid: bool
    format: RecordFormat | None
    container: Container | None
    total: int
    valid_count: int
    errors: list[RecordIssue] = field(default_factory=list)
    error_count: int = 0
    code: str | None = None
    message: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationResult:
        return cls(**{**data, "errors": [RecordIssue.from_dict(issue) for issue in data.get("errors", ())]})


class RecordScanner:
    """Streams the records of one file that match the file's format, recording an issue for every other one.

    The format is fixed by the first record that looks like any known format; a later record in another format
    is an error rather than a silent mix.
    """

    def __init__(self, *, path: str | Path, max_bytes: int, max_errors: int = DEFAULT_MAX_ERRORS) -> None:
        self._reader = RecordReader(path=path, max_bytes=max_bytes)
        self._max_errors = max_errors
        self.format: RecordFormat | None = None
        self.total = 0
        self.parsed = 0
        self.errors: list[RecordIssue] = []
        self.error_count = 0

    def add_issue(self, *, line: int, field: str | None, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self._max_errors:
            self.errors.append(RecordIssue(line=line, field=field, message=message))

    def records(self) -> Iterator[tuple[int, dict[str, Any], RecordFormat]]:
        """(line, raw record, format) per parsed record in the file's format; may raise DatasetError."""
        for raw in self._reader:
            self.total += 1
            if raw.error is not None:
                self.add_issue(line=raw.line, field=raw.field, message=raw.error)
                continue
            self.parsed += 1
            found = detect_record_format(raw.value)
            if found is None:
                self.add_issue(
                    line=raw.line,
                    field=None,
                    message="unrecognised record: expected 'instruction'/'output' (alpaca), "
                    "'conversations' (sharegpt) or 'messages' (openai)",
                )
                continue
            if self.format is None:
                self.format = found
            if found != self.format:
                self.add_issue(line=raw.line, field=None, message=f"{found} record in a {self.format} file")
                continue
            yield raw.line, raw.value, found

    def finish(self, *, valid_count: int) -> RecordFormat:
        """The file's format, or the whole-file rejection that only the end of the file reveals."""
        if self.total == 0:
            raise DatasetError(DatasetErrorCode.EMPTY_FILE, "file contains no records")
        if self.format is None and self.parsed:
            raise DatasetError(
                DatasetErrorCode.UNKNOWN_FORMAT, "no record is in the alpaca, sharegpt or openai chat format"
            )
        if self.format is None or valid_count == 0:
            raise DatasetError(DatasetErrorCode.NO_VALID_EXAMPLES, "no record is a valid training example")
        return self.format

    def result(self, *, valid_count: int, error: DatasetError | None = None) -> ValidationResult:
        return ValidationResult(
            valid=error is None and self.error_count == 0,
            format=self.format,
            container=self._reader.container,
            total=self.total,
            valid_count=valid_count,
            errors=list(self.errors),
            error_count=self.error_count,
            code=error.code.value if error else None,
            message=error.message if error else None,
        )


def validate_dataset(*, path: str | Path, max_bytes: int, max_errors: int = DEFAULT_MAX_ERRORS) -> ValidationResult:
    """Check an uploaded dataset without loading it; never raises for a bad file (see ``code``)."""
    scanner = RecordScanner(path=path, max_bytes=max_bytes, max_errors=max_errors)
    valid_count = 0
    try:
        for line, value, record_format in scanner.records():
            try:
                normalise_record(value, record_format)
            except RecordError as exc:
                scanner.add_issue(line=line, field=exc.field, message=exc.message)
            else:
                valid_count += 1
        scanner.finish(valid_count=valid_count)
    except DatasetError as exc:
        return scanner.result(valid_count=valid_count, error=exc)
    return scanner.result(valid_count=valid_count)
