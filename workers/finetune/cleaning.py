"""Per-record cleaning, following the TigerBot release-notes recipe.

Fixes (the record is kept):
* invisible characters are removed from every string: C0/C1 controls except ``\\n`` and ``\\t``
  (``\\r\\n`` and a lone ``\\r`` become ``\\n``), format characters (zero-width space/joiners, BOM, bidi
  marks, soft hyphen) and lone surrogates;
* alpaca ``input`` that is a "no input" marker (``NO_CONTENT_MARKER``, e.g. ``<noinput>``, possibly quoted)
  becomes empty;
* alpaca ``input`` equal to the ``instruction`` (after normalising case/space) becomes empty: the duplicated
  input is dropped, not the record.

Drops (the record is removed, reason in ``DropReason``):
* ``non_text_instruction``: the first user turn is only punctuation, symbols, digits and spaces;
* ``empty_output``: an assistant turn without tool calls is empty or a "no output" marker (``<nooutput>``);
* ``placeholder``: any turn or the system prompt contains a stand-in for content the text does not have, per
  ``PLACEHOLDER`` (``<一段文本>``, ``[图画]``, ``[图片]``, ``<image>``, ``<noinput>`` ...). HTML tags such
  as ``<img>``, ``<table>``, ``<video>`` and Markdown links ``[link](...)`` are deliberately NOT matched: they
  are legitimate in code answers.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Any

from workers.finetune.conversation import Conversation
from workers.finetune.dedupe import normalise_text
from workers.finetune.formats import RecordFormat


class DropReason(StrEnum):
    INVALID_RECORD = "invalid_record"
    NON_TEXT_INSTRUCTION = "non_text_instruction"
    EMPTY_OUTPUT = "empty_output"
    PLACEHOLDER = "placeholder"
    EXACT_DUPLICATE = "exact_duplicate"
    NEAR_DUPLICATE = "near_duplicate"


class Fix(StrEnum):
    INVISIBLE_CHARACTERS = "invisible_characters"
    NO_INPUT_MARKER = "no_input_marker"
    DUPLICATE_INPUT = "duplicate_input"


# Code points to delete: C0 controls but \t \n \r, DEL and C1 controls, common format characters (soft
# hyphen, Arabic letter mark, zero-width space/joiners, bidi marks and embeddings, word joiner and invisible
# operators, BOM, interlinear annotation), and lone surrogates (possible via JSON \ud800 escapes; they cannot
# be encoded as UTF-8).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_CARRIAGE_RETURN = re.compile(r"\r\n?")

NO_CONTENT_MARKER = re.compile(
    r"\s*[`'\"]?\s*[<\[]\s*(?:no[\s_-]?(?:input|output)|none|null|empty|n/?a|无输入|无输出|无|空)\s*[>\]]\s*[`'\"]?\s*",
    re.IGNORECASE,
)
PLACEHOLDER = re.compile(
    r"[<\[【]\s*(?:一|这|此|某)?(?:段|篇|张|幅|首|个|份|则|句)?"
    r"(?:文本|文字|文章|段落|句子|图画|图片|图像|照片|插图|表格|音频|视频|链接|网址|网页|附件|文件)\s*[>\]】]"
    r"|<\s*(?:image|picture|photo|photograph|url|attachment|no[\s_-]?input|no[\s_-]?output)\s*>"
    r"|\[\s*(?:image|img|picture|photo|photograph|audio|video|table|url|link|attachment|figure)\s*\](?!\()",
    re.IGNORECASE,
)


def strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", _CARRIAGE_RETURN.sub("\n", text))


def _strip_all(value: Any, changed: list[bool]) -> Any:
    if isinstance(value, str):
        cleaned = strip_invisible(value)
        if cleaned != value:
            changed[0] = True
        return cleaned
    if isinstance(value, list):
        return [_strip_all(item, changed) for item in value]
    if isinstance(value, dict):
        return {key: _strip_all(item, changed) for key, item in value.items()}
    return value


def fix_record(value: dict[str, Any], record_format: RecordFormat) -> tuple[dict[str, Any], list[Fix]]:
    """The raw record with the fixes above applied (a new dict), and which fixes changed something."""
    changed = [False]
    fixed = _strip_all(value, changed)
    fixes = [Fix.INVISIBLE_CHARACTERS] if changed[0] else []
    extra = fixed.get("input")
    if record_format != "alpaca" or not isinstance(extra, str) or not extra:
        return fixed, fixes
    if NO_CONTENT_MARKER.fullmatch(extra):
        fixed["input"] = ""
        fixes.append(Fix.NO_INPUT_MARKER)
    elif isinstance(fixed.get("instruction"), str) and normalise_text(extra) == normalise_text(fixed["instruction"]):
        fixed["input"] = ""
        fixes.append(Fix.DUPLICATE_INPUT)
    return fixed, fixes


def _is_non_text(text: str) -> bool:
    return all(unicodedata.category(char)[0] in "PSNZ" or char.isspace() for char in text)


def drop_reason(conversation: Conversation) -> DropReason | None:
    """Why a normalised, fixed conversation should not be trained on, or None to keep it."""
    first_user = next(message["content"] for message in conversation.messages if message["role"] == "user")
    if _is_non_text(first_user):
        return DropReason.NON_TEXT_INSTRUCTION
    for message in conversation.messages:
        if message["role"] != "assistant" or message.get("tool_calls"):
            continue
        content = message["content"]
        if not content.strip() or NO_CONTENT_MARKER.fullmatch(content):
            return DropReason.EMPTY_OUTPUT
    texts = [conversation.system or "", *(message["content"] for message in conversation.messages)]
    if any(PLACEHOLDER.search(text) for text in texts):
        return DropReason.PLACEHOLDER
    return None
