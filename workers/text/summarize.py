"""Map-reduce summarisation of texts longer than a model's input budget. Pure Python, no Django, no model:
the caller passes a token counter for the model's tokenizer and a ``generate(prompt, max_new_tokens)`` callable.

1. **map**: the text is cut, at paragraph and sentence boundaries where possible, into parts whose prompt fits
   the model's input budget, and each part is summarised (each partial summary is held to ``part_tokens``);
2. **reduce**: the partial summaries are packed into groups whose prompt fits and each group is summarised
   again; rounds repeat until one group fits, whose summary is the result (up to ``final_tokens``).

A partial summary is at most half of what fits beside the prompt, so every group but the last holds at least
two of them and each reduce round at least halves their number: the recursion always ends. A text that fits at
once takes a single model call. ``on_progress`` is told after every call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from workers.serialization import DictSerializable

Language = Literal["zh", "en"]
Stage = Literal["map", "reduce", "done"]
PromptKind = Literal["single", "map", "reduce"]

# Token slack between counting a text alone and inside the prompt (merges across the seams).
SEAM_MARGIN = 8
MIN_PART_TOKENS = 16
MAX_ROUNDS = 12

PROMPTS: dict[Language, dict[PromptKind, str]] = {
    "en": {
        "single": "Summarize the following document concisely, keeping its key facts and conclusions.\n\n{text}",
        "map": "Summarize the following part of a longer document concisely, keeping its key facts.\n\n{text}",
        "reduce": (
            "The following are summaries of consecutive parts of one document. Combine them into one "
            "concise summary of the whole document.\n\n{text}"
        ),
    },
    "zh": {
        "single": "请简明扼要地总结以下文档，保留关键事实和结论。\n\n{text}",
        "map": "请简明扼要地总结以下长文档中的一部分，保留关键事实。\n\n{text}",
        "reduce": "以下是同一文档各个连续部分的摘要。请把它们合并成一份简明的全文摘要。\n\n{text}",
    },
}
PART_SEPARATOR = "\n\n"

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;.\n])")


class ContextTooSmallError(ValueError):
    """The model's input budget leaves no room for text beside the instruction."""


class TooManyRoundsError(RuntimeError):
    """The summaries stopped shrinking (cannot happen with a correct token counter)."""


@dataclass
class Progress(DictSerializable):
    stage: Stage
    done: int
    total: int


@dataclass
class Step(DictSerializable):
    """One map or reduce round: how many inputs (of how many tokens in all) became how many outputs."""

    stage: Literal["map", "reduce"]
    round: int
    inputs: int
    input_tokens: int
    outputs: int = 0
    output_tokens: int = 0


@dataclass
class Outcome:
    summary: str
    steps: list[Step] = field(default_factory=list)
    calls: int = 0


def detect_language(text: str) -> Language:
    """``zh`` when Chinese characters are a fair share of the letters in the first 20,000 characters."""
    sample = text[:20_000]
    cjk, latin = len(_CJK.findall(sample)), len(_LATIN.findall(sample))
    return "zh" if cjk and cjk * 4 >= latin else "en"


def render_prompt(*, kind: PromptKind, language: Language, text: str) -> str:
    return PROMPTS[language][kind].format(text=text)


def head(text: str, *, max_tokens: int, count: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` (in characters) that counts at most ``max_tokens`` tokens; binary search
    over a window, since no token spans more than a few dozen characters."""
    if max_tokens <= 0:
        return ""
    high = min(len(text), max_tokens * 32)
    if count(text[:high]) <= max_tokens:
        return text[:high]
    low = 0  # count(text[:low]) <= max_tokens < count(text[:high])
    while high - low > 1:
        middle = (low + high) // 2
        if count(text[:middle]) <= max_tokens:
            low = middle
        else:
            high = middle
    return text[:low]


def _units(text: str) -> list[str]:
    """Paragraphs, and sentences of long paragraphs, each keeping its own punctuation."""
    units: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= 400:
            units.append(paragraph)
        else:
            units += [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]
    return units


def split_text(text: str, *, budget: int, count: Callable[[str], int]) -> list[str]:
    """Consecutive parts of ``text`` of at most ``budget`` tokens each (by the sum of their units' counts);
    units longer than the budget are cut wherever the tokens run out."""
    parts: list[str] = []
    current: list[str] = []
    current_tokens = 0
    separator_tokens = 1

    def flush() -> None:
        nonlocal current, current_tokens
        if current:
            parts.append("\n".join(current))
        current, current_tokens = [], 0

    for unit in _units(text):
        tokens = count(unit)
        if tokens > budget:
            flush()
            rest = unit
            while rest:
                piece = head(rest, max_tokens=budget, count=count) or rest[:1]
                parts.append(piece)
                rest = rest[len(piece) :].lstrip()
            continue
        if current and current_tokens + separator_tokens + tokens > budget:
            flush()
        current.append(unit)
        current_tokens += tokens + separator_tokens
    flush()
    return parts


def _group(items: list[str], *, fits: Callable[[str], bool]) -> list[list[str]]:
    """Consecutive items packed greedily into groups whose joined text fits."""
    groups: list[list[str]] = []
    for item in items:
        if groups and fits(PART_SEPARATOR.join([*groups[-1], item])):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def summarize(
    *,
    text: str,
    language: Language,
    max_input_tokens: int,
    final_tokens: int,
    part_tokens: int,
    count_prompt: Callable[[str], int],
    count: Callable[[str], int],
    generate: Callable[[str, int], str],
    on_progress: Callable[[Progress, list[Step]], None] = lambda progress, steps: None,
) -> Outcome:
    """Summarise ``text`` with as many model calls as its length needs.

    ``count_prompt(user_text)`` is the model's whole prompt length for one user message (chat template
    included); ``count(text)`` a bare text's token count; ``generate(prompt, max_new_tokens)`` the answer.
    """
    overhead = max(count_prompt(render_prompt(kind=kind, language=language, text="")) for kind in PROMPTS["en"])
    budget = max_input_tokens - overhead - SEAM_MARGIN
    if budget < 2 * MIN_PART_TOKENS:
        raise ContextTooSmallError(
            f"the model accepts {max_input_tokens} input tokens, of which the instructions take {overhead}: "
            f"too few are left for the text"
        )
    part_cap = max(MIN_PART_TOKENS, min(part_tokens, (budget - SEAM_MARGIN) // 2))

    def fits(kind: PromptKind, content: str) -> bool:
        return count_prompt(render_prompt(kind=kind, language=language, text=content)) <= max_input_tokens

    def fitted(kind: PromptKind, content: str) -> list[str]:
        """``content`` as one or more pieces whose prompts fit (the counts of split_text are sums)."""
        if fits(kind, content):
            return [content]
        first = head(content, max_tokens=max(1, count(content) // 2), count=count) or content[:1]
        return fitted(kind, first) + fitted(kind, content[len(first) :])

    outcome = Outcome(summary="")
    cleaned = text.strip()
    if not cleaned:
        return outcome
    if fits("single", cleaned):
        on_progress(Progress(stage="map", done=0, total=1), outcome.steps)
        step = Step(stage="map", round=0, inputs=1, input_tokens=count(cleaned))
        outcome.steps.append(step)
        outcome.summary = _call(
            outcome, generate, render_prompt(kind="single", language=language, text=cleaned), final_tokens
        ).strip()
        step.outputs, step.output_tokens = 1, count(outcome.summary)
        on_progress(Progress(stage="done", done=1, total=1), outcome.steps)
        return outcome

    parts = [piece for part in split_text(cleaned, budget=budget, count=count) for piece in fitted("map", part)]
    summaries = _round(
        outcome,
        stage="map",
        number=0,
        groups=[[p] for p in parts],
        language=language,
        max_tokens=part_cap,
        count=count,
        generate=generate,
        on_progress=on_progress,
    )
    for number in range(1, MAX_ROUNDS + 1):
        groups = _group(summaries, fits=lambda joined: fits("reduce", joined))
        if len(groups) == 1:
            final = PART_SEPARATOR.join(groups[0])
            step = Step(stage="reduce", round=number, inputs=len(groups[0]), input_tokens=count(final))
            outcome.steps.append(step)
            on_progress(Progress(stage="reduce", done=0, total=1), outcome.steps)
            prompt = render_prompt(kind="reduce", language=language, text=final)
            outcome.summary = _call(outcome, generate, prompt, final_tokens).strip()
            step.outputs, step.output_tokens = 1, count(outcome.summary)
            on_progress(Progress(stage="done", done=1, total=1), outcome.steps)
            return outcome
        summaries = _round(
            outcome,
            stage="reduce",
            number=number,
            groups=groups,
            language=language,
            max_tokens=part_cap,
            count=count,
            generate=generate,
            on_progress=on_progress,
        )
    raise TooManyRoundsError(f"the summaries did not fit after {MAX_ROUNDS} reduce rounds")


def _round(
    outcome: Outcome,
    *,
    stage: Literal["map", "reduce"],
    number: int,
    groups: list[list[str]],
    language: Language,
    max_tokens: int,
    count: Callable[[str], int],
    generate: Callable[[str, int], str],
    on_progress: Callable[[Progress, list[Step]], None],
) -> list[str]:
    """Summarise each group (a group of one partial summary in a reduce round is carried over as it is)."""
    inputs = [PART_SEPARATOR.join(group) for group in groups]
    step = Step(
        stage=stage, round=number, inputs=sum(len(g) for g in groups), input_tokens=sum(count(text) for text in inputs)
    )
    outcome.steps.append(step)
    kind: PromptKind = "map" if stage == "map" else "reduce"
    outputs: list[str] = []
    on_progress(Progress(stage=stage, done=0, total=len(inputs)), outcome.steps)
    for index, (group, joined) in enumerate(zip(groups, inputs, strict=True)):
        if stage == "reduce" and len(group) == 1:
            summary = group[0]
        else:
            summary = _call(outcome, generate, render_prompt(kind=kind, language=language, text=joined), max_tokens)
            summary = summary.strip()
            if count(summary) > max_tokens:  # re-tokenised text can count a little more than was generated
                summary = head(summary, max_tokens=max_tokens, count=count)
        outputs.append(summary)
        step.outputs, step.output_tokens = len(outputs), step.output_tokens + count(summary)
        on_progress(Progress(stage=stage, done=index + 1, total=len(inputs)), outcome.steps)
    return outputs


def _call(outcome: Outcome, generate: Callable[[str, int], str], prompt: str, max_tokens: int) -> str:
    outcome.calls += 1
    return generate(prompt, max_tokens)
