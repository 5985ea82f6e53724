"""Cleaning rules: fixes that keep a record, and the reasons that drop one."""

from __future__ import annotations

import pytest

from workers.finetune.cleaning import DropReason, Fix, drop_reason, fix_record, strip_invisible
from workers.finetune.formats import normalise_record


def _alpaca(instruction: str, output: str, extra: str = "") -> dict[str, str]:
    return {"instruction": instruction, "input": extra, "output": output}


def test_invisible_and_control_characters_are_removed() -> None:
    dirty = "\ufeffHel\u200blo\u200d \x07wor\x85ld\r\nnext\rline\ttab\u202e\u2060\u00ad"
    assert strip_invisible(dirty) == "Hello world\nnext\nline\ttab"
    assert strip_invisible("emoji 👍 and 中文 stay") == "emoji 👍 and 中文 stay"


def test_fix_strips_nested_strings_and_reports_it() -> None:
    record = {"conversations": [{"from": "human", "value": "hi\u200b"}, {"from": "gpt", "value": "yo\x00"}]}
    fixed, fixes = fix_record(record, "sharegpt")
    assert fixed["conversations"] == [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]
    assert fixes == [Fix.INVISIBLE_CHARACTERS]
    assert record["conversations"][0]["value"] == "hi\u200b"


@pytest.mark.parametrize("marker", ["<noinput>", "<No Input>", "`<noinput>`", "<无输入>", "[none]", " <空> "])
def test_no_input_markers_become_empty_input(marker: str) -> None:
    fixed, fixes = fix_record(_alpaca("Write a poem.", "Roses...", marker), "alpaca")
    assert fixed["input"] == ""
    assert fixes == [Fix.NO_INPUT_MARKER]


def test_input_repeating_the_instruction_is_dropped_not_the_record() -> None:
    fixed, fixes = fix_record(_alpaca("Translate: 你好", "Hello", "translate:  你好 "), "alpaca")
    assert fixed["input"] == ""
    assert fixes == [Fix.DUPLICATE_INPUT]
    assert drop_reason(normalise_record(fixed, "alpaca")) is None


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (_alpaca("1234", "a number"), DropReason.NON_TEXT_INSTRUCTION),
        (_alpaca("？？！！。。", "what?"), DropReason.NON_TEXT_INSTRUCTION),
        (_alpaca("...", "ok", "---"), DropReason.NON_TEXT_INSTRUCTION),
        (_alpaca("Say something", ""), DropReason.EMPTY_OUTPUT),
        (_alpaca("Say something", "  \n "), DropReason.EMPTY_OUTPUT),
        (_alpaca("Say something", "<nooutput>"), DropReason.EMPTY_OUTPUT),
        (_alpaca("总结<一段文本>", "这段文本讲了..."), DropReason.PLACEHOLDER),
        (_alpaca("描述这幅画", "画里有山", "[图画]"), DropReason.PLACEHOLDER),
        (_alpaca("这张照片里有什么", "[图片] 一只猫"), DropReason.PLACEHOLDER),
        (_alpaca("Describe <image>", "A cat."), DropReason.PLACEHOLDER),
        (_alpaca("Summarise the article", "It says [image] things"), DropReason.PLACEHOLDER),
        (_alpaca("Fill in", "answer <noinput>"), DropReason.PLACEHOLDER),
        (_alpaca("Open the page", "See <URL>"), DropReason.PLACEHOLDER),
    ],
)
def test_drop_reasons(record: dict[str, str], reason: DropReason) -> None:
    fixed, _ = fix_record(record, "alpaca")
    assert drop_reason(normalise_record(fixed, "alpaca")) == reason


@pytest.mark.parametrize(
    "record",
    [
        _alpaca("Write HTML for an image", '<img src="a.png"> inside <table><tr><td>1</td></tr></table>'),
        _alpaca("Format a Markdown link", "[link](https://example.com) and [image](a.png)"),
        _alpaca("What is 2+2?", "4"),
        _alpaca("解释一下这段代码", "这段代码定义了一个函数。"),
        _alpaca("Reply with an emoji", "👍"),
    ],
)
def test_legitimate_records_are_kept(record: dict[str, str]) -> None:
    fixed, _ = fix_record(record, "alpaca")
    assert drop_reason(normalise_record(fixed, "alpaca")) is None


def test_tool_call_answers_are_not_empty_outputs() -> None:
    conversation = normalise_record(
        {
            "conversations": [
                {"from": "human", "value": "weather?"},
                {"from": "function_call", "value": '{"name": "w", "arguments": {}}'},
                {"from": "observation", "value": "sunny"},
                {"from": "gpt", "value": "Sunny."},
            ]
        },
        "sharegpt",
    )
    assert drop_reason(conversation) is None
