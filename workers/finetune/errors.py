"""Typed whole-file dataset rejections; ``code`` is the machine-readable value the API returns."""

from __future__ import annotations

from enum import StrEnum


class DatasetErrorCode(StrEnum):
    INVALID_ENCODING = "invalid_encoding"
    INVALID_FILE = "invalid_file"
    EMPTY_FILE = "empty_file"
    FILE_TOO_LARGE = "file_too_large"
    NO_VALID_EXAMPLES = "no_valid_examples"
    UNKNOWN_FORMAT = "unknown_format"


class DatasetError(Exception):
    """The whole file is rejected; per-record problems are reported in ValidationResult.errors instead."""

    def __init__(self, code: DatasetErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
