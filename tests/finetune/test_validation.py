"""Upload validation: format detection on the real fixtures, whole-file rejections, per-record errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.finetune.formats import RecordError, normalise_record
from workers.finetune.reader import CHUNK_CHARS, RecordReader
from workers.finetune.validation import ValidationResult, validate_dataset

MB = 1 << 20


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _jsonl(*records: object) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


GOOD = {"instruction": "Say hi", "input": "", "output": "Hi!"}


@pytest.mark.parametrize(
    ("name", "record_format", "container", "valid_count"),
    [
        ("identity.json", "alpaca", "json", 91),
        ("alpaca_en_demo.json", "alpaca", "json", 999),
        ("alpaca_zh_demo.json", "alpaca", "json", 1000),
        ("glaive_toolcall_zh_demo.json", "sharegpt", "json", 298),
        ("v1_sft_demo.jsonl", "openai", "jsonl", 500),
    ],
)
def test_fixture_formats_are_detected(
    instruct_dir: Path, name: str, record_format: str, container: str, valid_count: int
) -> None:
    result = validate_dataset(path=instruct_dir / name, max_bytes=10 * MB)
    assert (result.format, result.container, result.valid_count) == (record_format, container, valid_count)
    assert result.code is None
    assert result.total == valid_count + result.error_count


def test_glaive_fixture_reports_its_two_broken_conversations(instruct_dir: Path) -> None:
    result = validate_dataset(path=instruct_dir / "glaive_toolcall_zh_demo.json", max_bytes=10 * MB)
    assert not result.valid
    assert [(e.line, e.field) for e in result.errors] == [
        (5819, "conversations[2].from"),
        (8763, "conversations[2].from"),
    ]
    assert "got tool" in result.errors[0].message


@pytest.mark.parametrize(
    ("content", "code", "line"),
    [
        (b"", "empty_file", None),
        (b"  \n\n \t\n", "empty_file", None),
        (b"[ ]\n", "empty_file", None),
        (b"instruction,output\n", "empty_file", None),
        (
            b'{"instruction": "a", "output": "b"}\n{"instruction": "caf\xe9", "output": "x"}\n',
            "invalid_encoding",
            2,
        ),
        (b"\xff\xfe[\x00{\x00", "invalid_encoding", None),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "invalid_file", None),
        (b"PK\x03\x04 zip archive", "invalid_file", None),
        (
            b'{"instruction": "a", "output": "b"}\n' * 3000 + b'{"instruction": "\x00"}\n',
            "invalid_file",
            3001,
        ),
        (b'{"foo": 1}\n{"bar": 2}\n', "unknown_format", None),
        (b"just some prose\nwith two lines\n", "unknown_format", None),
        (b'{"instruction": "a"}\n{"instruction": "b", "output": 3}\n', "no_valid_examples", None),
        (b"{not json\n", "no_valid_examples", None),
    ],
)
def test_whole_file_rejections(tmp_path: Path, content: bytes, code: str, line: int | None) -> None:
    result = validate_dataset(path=_write(tmp_path, "data.jsonl", content), max_bytes=MB)
    assert not result.valid
    assert result.code == code, result.message
    if line is not None:
        assert f"line {line}:" in (result.message or "")


def test_file_too_large_is_rejected_before_reading(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.jsonl", _jsonl(GOOD) * 100)
    result = validate_dataset(path=path, max_bytes=1000)
    assert (result.code, result.total) == ("file_too_large", 0)


def test_missing_file_is_invalid(tmp_path: Path) -> None:
    assert validate_dataset(path=tmp_path / "nope.jsonl", max_bytes=MB).code == "invalid_file"


def test_jsonl_record_errors_name_line_and_field(tmp_path: Path) -> None:
    content = (
        _jsonl(GOOD)
        + "{broken json\n"
        + "\n"
        + _jsonl(
            {"instruction": "q"},
            {"instruction": "q", "output": ["a", "b"]},
            {"instruction": "q", "output": "a", "history": [["only one"]]},
            ["not", "an", "object"],
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
        )
    )
    result = validate_dataset(path=_write(tmp_path, "d.jsonl", content), max_bytes=MB)
    assert (result.format, result.total, result.valid_count, result.error_count) == ("alpaca", 7, 1, 6)
    assert [(e.line, e.field) for e in result.errors] == [
        (2, None),
        (4, "output"),
        (5, "output"),
        (6, "history[0]"),
        (7, None),
        (8, None),
    ]
    assert result.errors[0].message.startswith("invalid JSON")
    assert "missing" in result.errors[1].message
    assert "openai record in a alpaca file" in result.errors[5].message
    assert not result.valid and result.code is None


def test_error_list_is_capped_but_all_are_counted(tmp_path: Path) -> None:
    content = _jsonl(GOOD) + _jsonl(*([{"instruction": "q"}] * 50))
    result = validate_dataset(path=_write(tmp_path, "d.jsonl", content), max_bytes=MB, max_errors=20)
    assert (len(result.errors), result.error_count) == (20, 50)
    assert result.errors[-1].line == 21


def test_json_array_syntax_error_stops_with_its_line(tmp_path: Path) -> None:
    content = '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c", "output": "d"}\n  {"x": 1}\n]'
    result = validate_dataset(path=_write(tmp_path, "d.json", content), max_bytes=MB)
    assert result.valid_count == 2
    assert [(e.line, e.message) for e in result.errors] == [(4, "invalid JSON: expected ',' or ']' between records")]


def test_json_array_records_spanning_chunks_keep_their_lines(tmp_path: Path) -> None:
    long_output = "x" * (CHUNK_CHARS + 123)
    records = [
        {"instruction": f"q{i}", "output": long_output if i % 3 == 0 else f"a{i}", "n": 10**12 + i} for i in range(12)
    ]
    content = "[\n" + ",\n".join(json.dumps(r, indent=1) for r in records) + "\n]\n"
    path = _write(tmp_path, "d.json", content)
    parsed = list(RecordReader(path=path, max_bytes=10 * MB))
    assert [r.value for r in parsed] == records
    lines_per_record = json.dumps(records[0], indent=1).count("\n") + 1
    assert [r.line for r in parsed] == [2 + i * lines_per_record for i in range(12)]


@pytest.mark.parametrize("length", [5000, 3 * CHUNK_CHARS])
def test_overlong_jsonl_line_is_one_error_and_reading_goes_on(tmp_path: Path, length: int) -> None:
    content = _jsonl(GOOD) + json.dumps({"instruction": "q", "output": "y" * length}) + "\n" + _jsonl(GOOD)
    path = _write(tmp_path, "d.jsonl", content)
    parsed = list(RecordReader(path=path, max_bytes=MB, max_record_chars=1000))
    assert [(r.line, r.error is None) for r in parsed] == [(1, True), (2, False), (3, True)]


def test_csv_with_quoted_newlines_and_json_cells(tmp_path: Path) -> None:
    content = (
        "instruction,input,output,history\n"
        'Translate,"hello\nworld",你好世界,\n'
        'Continue,,"line one\nline two","[[""q1"", ""a1""]]"\n'
        "only,two\n"
        'Bad history,,x,"[oops"\n'
    )
    path = _write(tmp_path, "d.csv", "\ufeff" + content)
    result = validate_dataset(path=path, max_bytes=MB)
    assert (result.container, result.format, result.valid_count) == ("csv", "alpaca", 2)
    assert [(e.line, e.field) for e in result.errors] == [(6, None), (7, "history")]
    raw = [r.value for r in RecordReader(path=path, max_bytes=MB)][:2]
    assert raw[0] == {"instruction": "Translate", "input": "hello\nworld", "output": "你好世界"}
    assert normalise_record(raw[1], "alpaca").messages[:2] == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
    ]


def test_tab_separated_csv_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.tsv", "instruction\toutput\nq\ta\n")
    result = validate_dataset(path=path, max_bytes=MB)
    assert (result.container, result.valid_count) == ("csv", 1)


def test_alpaca_normalisation_with_system_history_and_input() -> None:
    conversation = normalise_record(
        {
            "instruction": "Summarise",
            "input": "long text",
            "output": "short",
            "system": "Be brief",
            "history": [["hi", "hello"]],
        },
        "alpaca",
    )
    assert conversation.system == "Be brief"
    assert conversation.messages == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Summarise\nlong text"},
        {"role": "assistant", "content": "short"},
    ]


def test_sharegpt_tool_turns_become_tool_calls_and_results() -> None:
    record = {
        "conversations": [
            {"from": "system", "value": "sys"},
            {"from": "human", "value": "weather?"},
            {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "北京"}}'},
            {"from": "observation", "value": '{"t": 21}'},
            {"from": "gpt", "value": "21 度"},
        ],
        "tools": '[{"name": "get_weather", "description": "d", "parameters": {"type": "object"}}]',
    }
    conversation = normalise_record(record, "sharegpt")
    assert conversation.system == "sys"
    assert conversation.tools == [{"name": "get_weather", "description": "d", "parameters": {"type": "object"}}]
    call = {"id": "call_2_0", "name": "get_weather", "arguments": '{"city": "北京"}'}
    assert conversation.messages[1:3] == [
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": '{"t": 21}', "tool_call_id": "call_2_0"},
    ]
    messages = conversation.chat_messages()
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages[2].tool_calls[0].name == "get_weather"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"conversations": [{"from": "robot", "value": "x"}]}, "conversations[0].from"),
        ({"conversations": [{"from": "human", "value": 3}]}, "conversations[0].value"),
        ({"conversations": [{"from": "gpt", "value": "x"}]}, "conversations[0].from"),
        ({"conversations": [{"from": "human", "value": "x"}]}, "conversations[0].from"),
        (
            {
                "conversations": [
                    {"from": "human", "value": "x"},
                    {"from": "function_call", "value": "call it"},
                ]
            },
            "conversations[1].value",
        ),
        (
            {
                "conversations": [
                    {"from": "human", "value": "x"},
                    {"from": "gpt", "value": "y"},
                    {"from": "system", "value": "late"},
                ]
            },
            "conversations[2].from",
        ),
        ({"conversations": []}, "conversations"),
    ],
)
def test_sharegpt_errors_name_the_field(record: dict, field: str) -> None:
    with pytest.raises(RecordError) as caught:
        normalise_record(record, "sharegpt")
    assert caught.value.field == field


def test_openai_text_parts_tool_calls_and_rejected_images() -> None:
    conversation = normalise_record(
        {
            "messages": [
                {"role": "developer", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "value": "b"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "ok"},
                {"role": "assistant", "content": "done", "loss_weight": 1.0},
            ]
        },
        "openai",
    )
    assert conversation.system == "sys"
    assert conversation.messages[0] == {"role": "user", "content": "a\nb"}
    assert conversation.messages[1]["tool_calls"] == [{"id": "c1", "name": "f", "arguments": "{}"}]
    with pytest.raises(RecordError) as caught:
        normalise_record(
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
                    {"role": "assistant", "content": "y"},
                ]
            },
            "openai",
        )
    assert caught.value.field == "messages[0].content[0]"


def test_validation_result_round_trips_through_json(instruct_dir: Path) -> None:
    result = validate_dataset(path=instruct_dir / "glaive_toolcall_zh_demo.json", max_bytes=10 * MB)
    assert ValidationResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
