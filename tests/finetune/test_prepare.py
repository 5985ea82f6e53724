"""prepare_dataset end to end: report, split, validation-file dedupe, token statistics, written JSONL."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from workers.finetune.errors import DatasetError, DatasetErrorCode
from workers.finetune.prepare import (
    AUTO_VALIDATION_MAX_EXAMPLES,
    AUTO_VALIDATION_MIN_EXAMPLES,
    prepare_dataset,
    read_conversations,
    split_indices,
    validation_size,
)
from workers.finetune.report import DatasetReport


def _jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _record(i: int) -> dict[str, str]:
    return {
        "instruction": f"Question number {i}: tell me a distinct fact about topic {i * 7919 % 1000}.",
        "input": "",
        "output": f"Fact {i}: " + " ".join(f"w{(i * 31 + k) % 997}" for k in range(20)),
    }


def test_report_counts_every_drop_reason_and_fix(tmp_path: Path) -> None:
    records: list[object] = [_record(i) for i in range(20)]
    near = dict(records[3])
    near["output"] = near["output"].replace("Fact", "Fakt")
    records += [
        dict(records[0]),  # exact duplicate
        {**records[1], "instruction": records[1]["instruction"].upper()},  # exact after normalisation
        near,
        {"instruction": "12345", "input": "", "output": "numbers"},
        {"instruction": "Say it", "input": "", "output": ""},
        {"instruction": "Describe", "input": "[图片]", "output": "A cat"},
        {"instruction": "Explain gravity", "input": "<noinput>", "output": "Mass attracts\u200b mass."},
        {"instruction": "q without output"},
        "not an object",
        {"instruction": f"e{4}", "output": ""},
    ]
    for i in range(4):
        records.append({"instruction": f"empty {i}", "input": "", "output": ""})
    report = prepare_dataset(
        path=_jsonl(tmp_path / "d.jsonl", records), out_dir=tmp_path / "out", max_length=64, validation_fraction=0.2
    )
    counts = {reason: summary.count for reason, summary in report.dropped.items()}
    assert counts == {
        "exact_duplicate": 2,
        "near_duplicate": 1,
        "non_text_instruction": 1,
        "empty_output": 6,
        "placeholder": 1,
        "invalid_record": 2,
    }
    assert all(len(summary.examples) <= 3 for summary in report.dropped.values())
    assert report.dropped["near_duplicate"].examples[0].detail.startswith("repeats train line 4:")
    assert report.dropped["invalid_record"].examples[0].line == 28
    assert report.fixed == {"no_input_marker": 1, "invisible_characters": 1}
    assert (report.total, report.kept) == (len(records), 21)
    assert (report.train_count, report.validation_count, report.validation_source) == (17, 4, "split")
    train = read_conversations(report.train_path)
    validation = read_conversations(report.validation_path)
    assert len(train) + len(validation) == 21
    assert {"role": "user", "content": "Explain gravity"} in [c.messages[0] for c in train + validation]
    assert DatasetReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_split_is_deterministic_per_seed() -> None:
    assert split_indices(count=100, fraction=0.2, seed=3) == split_indices(count=100, fraction=0.2, seed=3)
    assert split_indices(count=100, fraction=0.2, seed=3) != split_indices(count=100, fraction=0.2, seed=4)
    assert len(split_indices(count=100, fraction=0.2, seed=0)) == 20
    assert (
        split_indices(count=1, fraction=0.2, seed=0),
        len(split_indices(count=2, fraction=0.2, seed=0)),
    ) == ([], 1)


def test_validation_file_records_repeating_training_data_are_dropped(tmp_path: Path) -> None:
    train = _jsonl(tmp_path / "train.jsonl", [_record(i) for i in range(10)])
    validation = _jsonl(tmp_path / "val.json", [_record(3), _record(100), _record(101), _record(100)])
    report = prepare_dataset(path=train, validation_path=validation, out_dir=tmp_path / "out", max_length=64)
    assert (report.train_count, report.validation_count, report.validation_source) == (10, 2, "file")
    assert report.dropped["exact_duplicate"].count == 2
    assert {e.source for e in report.dropped["exact_duplicate"].examples} == {"validation"}


def test_token_statistics_use_the_training_prompt_format(tmp_path: Path, tiny_tokenizer_dir: Path) -> None:
    records = [_record(i) for i in range(10)]
    kwargs = {"path": _jsonl(tmp_path / "d.jsonl", records), "out_dir": tmp_path / "out", "max_length": 120}
    templated = prepare_dataset(**kwargs, tokenizer_path=tiny_tokenizer_dir, family="tigerbot").token_stats
    inferred = prepare_dataset(**kwargs, tokenizer_path=tiny_tokenizer_dir).token_stats
    plain = prepare_dataset(**kwargs, tokenizer_path=tiny_tokenizer_dir, family="llama2-chat").token_stats
    assert templated is not None and templated == inferred  # family read from the checkpoint's config.json
    assert plain is not None and plain.mean != templated.mean
    assert templated.count == 10
    assert templated.min < 120 < templated.max
    assert templated.min <= templated.p50 <= templated.p95 <= templated.max
    assert 0 < templated.over_max_length < 10
    assert prepare_dataset(**kwargs).token_stats is None


@pytest.mark.parametrize(
    ("name", "kept"),
    # glaive: 251 since near-duplicates are confirmed on their exact similarity (two pairs the MinHash estimate put
    # over 0.8 are at 0.77 and 0.79).
    [("identity.json", 91), ("alpaca_zh_demo.json", 992), ("glaive_toolcall_zh_demo.json", 251)],
)
def test_fixtures_prepare(tmp_path: Path, instruct_dir: Path, name: str, kept: int) -> None:
    report = prepare_dataset(path=instruct_dir / name, out_dir=tmp_path, max_length=1024, seed=1)
    assert (report.kept, report.train_count, report.validation_count) == (kept, kept, 0)  # all under 1000
    split = prepare_dataset(
        path=instruct_dir / name, out_dir=tmp_path, max_length=1024, seed=1, validation_fraction=0.2
    )
    assert split.validation_count == round(kept * 0.2)


def _distinct_records(count: int) -> list[dict[str, str]]:
    """``count`` records no two of which are near-duplicates (random words, so dedupe keeps them all)."""
    rng = random.Random(0)
    words = [f"{a}{b}" for a in "bcdfghklmnprstvz" for b in ("ab", "eb", "ik", "ol", "ut", "ax", "em", "on")]
    return [
        {
            "instruction": f"Q{i}: " + " ".join(rng.choices(words, k=12)),
            "input": "",
            "output": " ".join(rng.choices(words, k=16)),
        }
        for i in range(count)
    ]


def test_a_small_dataset_is_all_trained_on_unless_a_split_is_asked_for(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "d.jsonl", _distinct_records(8))
    report = prepare_dataset(path=data, out_dir=tmp_path / "auto", max_length=64)
    assert (report.train_count, report.validation_count, report.validation_source) == (8, 0, "none")
    assert len(read_conversations(report.train_path)) == 8
    assert read_conversations(report.validation_path) == []
    asked = prepare_dataset(path=data, out_dir=tmp_path / "asked", max_length=64, validation_fraction=0.25)
    assert (asked.train_count, asked.validation_count, asked.validation_source) == (6, 2, "split")
    none = prepare_dataset(path=data, out_dir=tmp_path / "none", max_length=64, validation_fraction=0)
    assert (none.train_count, none.validation_count) == (8, 0)


def test_a_large_dataset_holds_out_a_capped_tenth_by_default(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "d.jsonl", _distinct_records(AUTO_VALIDATION_MIN_EXAMPLES))
    report = prepare_dataset(path=data, out_dir=tmp_path / "auto", max_length=64)
    assert report.kept == AUTO_VALIDATION_MIN_EXAMPLES
    assert (report.validation_count, report.validation_source) == (100, "split")
    assert report.train_count == AUTO_VALIDATION_MIN_EXAMPLES - 100
    none = prepare_dataset(path=data, out_dir=tmp_path / "none", max_length=64, validation_fraction=0)
    assert (none.train_count, none.validation_count, none.validation_source) == (1000, 0, "none")


def test_validation_size_rule() -> None:
    assert validation_size(count=AUTO_VALIDATION_MIN_EXAMPLES - 1, fraction=None) == 0
    assert validation_size(count=1500, fraction=None) == 150
    assert validation_size(count=1_000_000, fraction=None) == AUTO_VALIDATION_MAX_EXAMPLES
    assert validation_size(count=8, fraction=0.2) == 2
    assert validation_size(count=1_000_000, fraction=0) == 0
    assert validation_size(count=1_000_000, fraction=0.5) == 500_000


def test_files_rejected_as_a_whole_raise(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        prepare_dataset(path=_jsonl(tmp_path / "d.jsonl", [{"a": 1}]), out_dir=tmp_path, max_length=64)
    assert caught.value.code == DatasetErrorCode.UNKNOWN_FORMAT
    empty_outputs = [{"instruction": f"q{i}", "output": ""} for i in range(3)]
    with pytest.raises(DatasetError) as caught:
        prepare_dataset(path=_jsonl(tmp_path / "e.jsonl", empty_outputs), out_dir=tmp_path, max_length=64)
    assert caught.value.code == DatasetErrorCode.NO_VALID_EXAMPLES
