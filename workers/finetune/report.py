"""The dataset preparation report the API shows to the user (JSON-safe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from workers.serialization import DictSerializable

MAX_EXAMPLES_PER_REASON = 3


@dataclass(frozen=True)
class DropExample:
    """``source`` is the file ('train' or 'validation'); ``detail`` is a record preview or the error."""

    source: Literal["train", "validation"]
    line: int
    detail: str


@dataclass
class DropSummary:
    count: int = 0
    examples: list[DropExample] = field(default_factory=list)

    def add(self, example: DropExample) -> None:
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES_PER_REASON:
            self.examples.append(example)


@dataclass(frozen=True)
class TokenStats:
    """Tokens per example (prompt + response, in the training prompt format when the family is known)."""

    count: int
    min: int
    mean: float
    p50: float
    p95: float
    max: int
    max_length: int
    over_max_length: int


@dataclass
class DatasetReport(DictSerializable):
    format: str
    total: int
    kept: int
    train_count: int
    validation_count: int
    validation_source: Literal["file", "split", "none"]
    seed: int
    train_path: str
    validation_path: str
    dropped: dict[str, DropSummary] = field(default_factory=dict)
    fixed: dict[str, int] = field(default_factory=dict)
    token_stats: TokenStats | None = None
    validation_format: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetReport:
        dropped = {
            reason: DropSummary(
                count=summary["count"], examples=[DropExample(**example) for example in summary["examples"]]
            )
            for reason, summary in data.get("dropped", {}).items()
        }
        stats = data.get("token_stats")
        return cls(**{**data, "dropped": dropped, "token_stats": TokenStats(**stats) if stats else None})
