"""Dataset preparation for a fine-tuning job: validate, fix, filter, dedupe, split, measure, write JSONL.

Records are streamed from the files; the kept conversations are held in memory (dedupe and the split need them
all). A validation file goes through the same cleaning, and its records that repeat (exactly or nearly) a
training record or an earlier validation record are dropped, so validation loss is never measured on
training data. Without a validation file, a deterministic ``validation_fraction`` of the kept records (by
``seed``) becomes the validation set; when no fraction was asked for, examples are held out only from a dataset
large enough that losing them costs training nothing noticeable (``validation_size``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from workers.finetune.cleaning import DropReason, drop_reason, fix_record
from workers.finetune.conversation import Conversation
from workers.finetune.dedupe import exact_duplicates, exact_key, near_duplicates
from workers.finetune.errors import DatasetError, DatasetErrorCode
from workers.finetune.formats import RecordError, RecordFormat, normalise_record
from workers.finetune.report import MAX_EXAMPLES_PER_REASON, DatasetReport, DropExample, DropSummary
from workers.finetune.token_stats import token_stats
from workers.finetune.validation import RecordScanner
from workers.runtime.specs import Family

DEFAULT_MAX_BYTES = 2 << 30
TRAIN_FILE = "train.jsonl"
VALIDATION_FILE = "validation.jsonl"
_PREVIEW_CHARS = 200
# The split made when the user asks for none: a small dataset (a few facts to teach) needs every example for
# training, and its validation loss would be noise anyway; from AUTO_VALIDATION_MIN_EXAMPLES kept examples on,
# AUTO_VALIDATION_FRACTION of them (at most AUTO_VALIDATION_MAX_EXAMPLES, plenty for a stable loss) are held out.
AUTO_VALIDATION_MIN_EXAMPLES = 1000
AUTO_VALIDATION_FRACTION = 0.1
AUTO_VALIDATION_MAX_EXAMPLES = 200

Source = Literal["train", "validation"]


@dataclass
class _Kept:
    source: Source
    line: int
    conversation: Conversation


class _Collector:
    def __init__(self) -> None:
        self.kept: list[_Kept] = []
        self.dropped: dict[str, DropSummary] = {}
        self.fixed: Counter[str] = Counter()
        self.total = 0

    def drop(self, reason: DropReason, example: DropExample) -> None:
        self.dropped.setdefault(reason.value, DropSummary()).add(example)

    def read(self, *, path: str | Path, source: Source, max_bytes: int) -> RecordFormat:
        """Stream one file into ``kept``/``dropped``; returns its record format."""
        scanner = RecordScanner(path=path, max_bytes=max_bytes)
        kept_before = len(self.kept)
        normalised = 0
        for line, value, record_format in scanner.records():
            fixed, fixes = fix_record(value, record_format)
            self.fixed.update(fix.value for fix in fixes)
            try:
                conversation = normalise_record(fixed, record_format)
            except RecordError as exc:
                scanner.add_issue(line=line, field=exc.field, message=exc.message)
                continue
            normalised += 1
            reason = drop_reason(conversation)
            if reason is None:
                self.kept.append(_Kept(source, line, conversation))
            else:
                self.drop(reason, DropExample(source, line, _preview(value)))
        record_format = scanner.finish(valid_count=normalised)
        self.total += scanner.total
        if scanner.error_count:
            examples = [
                DropExample(source, issue.line, f"{issue.field}: {issue.message}" if issue.field else issue.message)
                for issue in scanner.errors[:MAX_EXAMPLES_PER_REASON]
            ]
            summary = self.dropped.setdefault(DropReason.INVALID_RECORD.value, DropSummary())
            summary.count += scanner.error_count
            summary.examples = (summary.examples + examples)[:MAX_EXAMPLES_PER_REASON]
        if len(self.kept) == kept_before and source == "train":
            raise DatasetError(DatasetErrorCode.NO_VALID_EXAMPLES, "no training example is left after cleaning")
        return record_format

    def dedupe(self, *, threshold: float) -> None:
        exact = exact_duplicates([exact_key(_full_text(item.conversation)) for item in self.kept])
        self._remove(exact, DropReason.EXACT_DUPLICATE)
        near = near_duplicates(
            [_full_text(item.conversation) for item in self.kept],
            prompts=[item.conversation.prompt_text() for item in self.kept],
            threshold=threshold,
        )
        self._remove(near, DropReason.NEAR_DUPLICATE)

    def _remove(self, duplicate_of: list[int], reason: DropReason) -> None:
        survivors = []
        for item, original in zip(self.kept, duplicate_of, strict=True):
            if original < 0:
                survivors.append(item)
                continue
            first = self.kept[original]
            detail = f"repeats {first.source} line {first.line}: {_preview(item.conversation.to_dict())}"
            self.drop(reason, DropExample(item.source, item.line, detail))
        self.kept = survivors


def _preview(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _PREVIEW_CHARS else text[: _PREVIEW_CHARS - 1] + "…"


def _full_text(conversation: Conversation) -> str:
    tools = json.dumps(conversation.tools, ensure_ascii=False, sort_keys=True) if conversation.tools else ""
    return "\n".join(part for part in (tools, conversation.prompt_text(), conversation.response_text()) if part)


def _write_jsonl(path: Path, conversations: list[Conversation]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for conversation in conversations:
            handle.write(json.dumps(conversation.to_dict(), ensure_ascii=False) + "\n")


def validation_size(*, count: int, fraction: float | None) -> int:
    """How many of ``count`` examples to hold out. An explicit ``fraction`` holds out ``round(count * fraction)``,
    at least 1 and at most count - 1 (0 holds out none); ``None`` (not asked for) applies the automatic rule:
    none below AUTO_VALIDATION_MIN_EXAMPLES, else AUTO_VALIDATION_FRACTION capped at AUTO_VALIDATION_MAX_EXAMPLES."""
    if fraction is None:
        if count < AUTO_VALIDATION_MIN_EXAMPLES:
            return 0
        return min(round(count * AUTO_VALIDATION_FRACTION), AUTO_VALIDATION_MAX_EXAMPLES)
    if count < 2 or fraction <= 0:
        return 0
    return min(max(1, round(count * fraction)), count - 1)


def split_indices(*, count: int, fraction: float | None, seed: int) -> list[int]:
    """Sorted indices of the validation part (``validation_size`` of them), the same for the same
    (count, fraction, seed)."""
    size = validation_size(count=count, fraction=fraction)
    if not size:
        return []
    return sorted(np.random.default_rng(seed).permutation(count)[:size].tolist())


def prepare_dataset(
    *,
    path: str | Path,
    out_dir: str | Path,
    max_length: int,
    tokenizer_path: str | Path | None = None,
    family: Family | None = None,
    validation_path: str | Path | None = None,
    seed: int = 0,
    validation_fraction: float | None = None,
    near_duplicate_threshold: float = 0.8,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DatasetReport:
    """Write ``out_dir``/train.jsonl and validation.jsonl (internal Conversation form) and report on them.

    ``validation_fraction`` None (the user asked for no particular split) applies the automatic rule of
    ``validation_size``; 0 holds out nothing. Raises DatasetError when either file is rejected as a whole or no
    training example survives cleaning.
    Token statistics are computed only when ``tokenizer_path`` is given; ``family`` (else the one recorded
    in the tokenizer directory's config.json) selects the prompt format they are measured in.
    """
    collector = _Collector()
    record_format = collector.read(path=path, source="train", max_bytes=max_bytes)
    validation_format = None
    if validation_path is not None:
        validation_format = collector.read(path=validation_path, source="validation", max_bytes=max_bytes)
    collector.dedupe(threshold=near_duplicate_threshold)

    train = [item.conversation for item in collector.kept if item.source == "train"]
    if validation_path is not None:
        validation = [item.conversation for item in collector.kept if item.source == "validation"]
        validation_source: Literal["file", "split", "none"] = "file"
    else:
        chosen = set(split_indices(count=len(train), fraction=validation_fraction, seed=seed))
        validation = [conversation for index, conversation in enumerate(train) if index in chosen]
        train = [conversation for index, conversation in enumerate(train) if index not in chosen]
        validation_source = "split" if validation else "none"

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / TRAIN_FILE, train)
    _write_jsonl(out / VALIDATION_FILE, validation)
    stats = None
    if tokenizer_path is not None:
        stats = token_stats(
            conversations=train + validation,
            tokenizer_path=tokenizer_path,
            family=family,
            max_length=max_length,
        )
    return DatasetReport(
        format=record_format,
        validation_format=validation_format,
        total=collector.total,
        kept=len(train) + len(validation),
        train_count=len(train),
        validation_count=len(validation),
        validation_source=validation_source,
        seed=seed,
        train_path=str(out / TRAIN_FILE),
        validation_path=str(out / VALIDATION_FILE),
        dropped=collector.dropped,
        fixed=dict(collector.fixed),
        token_stats=stats,
    )


def read_conversations(path: str | Path) -> list[Conversation]:
    """Load a prepared train/validation JSONL file."""
    with Path(path).open(encoding="utf-8") as handle:
        return [Conversation.from_dict(json.loads(line)) for line in handle if line.strip()]
