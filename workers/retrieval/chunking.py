"""Structure-aware chunking: statute articles for law texts, headings/paragraphs/tables otherwise.

Every chunk's ``text`` is exactly ``document[start:end]``; the document title and the heading path
travel separately and are joined in front of the text only for indexing (``indexed_text``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

ChunkKind = Literal["law", "generic"]

_CN_NUM = "一二三四五六七八九十百千零〇两"
_ARTICLE = re.compile(rf"^[ \t\u3000]*第[{_CN_NUM}]+条(?:之[{_CN_NUM}]+)?(?=[\s\u2002])", re.M)
_LAW_HEADING = re.compile(rf"^[ \t]*(#*)[ \t]*(第[{_CN_NUM}]+(分编|编|章|节))(?:[ \t\u3000\u2002]+(.*))?$", re.M)
_MD_HEADING = re.compile(r"^[ \t]*(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
# Markdown depth orders headings; bare "第…章" lines (no #) rank below any markdown heading,
# 编 > 分编 > 章 > 节 among themselves.
_BARE_LAW_LEVELS = {"编": 7, "分编": 8, "章": 9, "节": 10}
_LINE = re.compile(r"[^\n]+")
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z0-9]+(?:[.,'’][A-Za-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=[.])(?=\s)")
_TABLE_CELL = " | "


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    text: str
    start: int
    end: int
    title: str
    heading: str

    @property
    def indexed_text(self) -> str:
        return "\n".join(part for part in (self.title, self.heading, self.text) if part)


@dataclass(frozen=True, slots=True)
class _Span:
    """A piece that is never cut inside a chunk: a paragraph, a sentence or a table row."""

    start: int
    end: int
    tokens: int


def count_tokens(*, text: str) -> int:
    """Approximate token count: one per CJK character, one per Latin word or number."""
    return sum(1 for _ in _TOKEN.finditer(text))


def chunk_document(
    *, text: str, title: str, kind: ChunkKind = "generic", max_tokens: int = 256, overlap: int = 32
) -> list[Chunk]:
    """Split one document; law texts without article lines fall back to the generic splitter."""
    if kind == "law" and _ARTICLE.search(text):
        pieces = _law_pieces(text, max_tokens=max_tokens, overlap=overlap)
    else:
        pieces = _generic_pieces(text, 0, len(text), heading="", max_tokens=max_tokens, overlap=overlap)
    return [
        Chunk(ordinal=i, text=text[start:end], start=start, end=end, title=title, heading=heading)
        for i, (start, end, heading) in enumerate(pieces)
    ]


def _law_pieces(text: str, *, max_tokens: int, overlap: int) -> Iterator[tuple[int, int, str]]:
    """One piece per article (sub-split when over budget), headed by the enclosing 编/章/节 path."""
    headings = {m.start(): m for m in _MD_HEADING.finditer(text)}
    headings.update({m.start(): m for m in _LAW_HEADING.finditer(text)})
    boundaries = sorted([*headings, *(m.start() for m in _ARTICLE.finditer(text)), len(text)])
    path: list[tuple[int, str]] = []
    segment_start = 0
    for position in boundaries:
        yield from _generic_pieces(
            text, segment_start, position, heading=_joined(path), max_tokens=max_tokens, overlap=overlap
        )
        segment_start = position
        match = headings.get(position)
        if match is None:
            continue
        if match.re is _LAW_HEADING:
            label = " ".join(filter(None, (match.group(2), (match.group(4) or "").strip())))
            level = len(match.group(1)) or _BARE_LAW_LEVELS[match.group(3)]
        else:
            label = match.group(2).strip()
            level = len(match.group(1))
        path = _descend(path, level, label)
        segment_start = match.end()


def _generic_pieces(
    text: str, start: int, end: int, *, heading: str, max_tokens: int, overlap: int
) -> Iterator[tuple[int, int, str]]:
    """Pack paragraphs into chunks of at most ``max_tokens``; a markdown heading starts a new section."""
    section: list[tuple[int, str]] = []
    spans: list[_Span] = []
    for block_start, block_end, heading_match in _blocks(text, start, end):
        if heading_match:
            yield from _pack(spans, heading=_joined(section, outer=heading), max_tokens=max_tokens, overlap=overlap)
            spans = []
            section = _descend(section, len(heading_match.group(1)), heading_match.group(2).strip())
            continue
        tokens = count_tokens(text=text[block_start:block_end])
        if tokens <= max_tokens:
            spans.append(_Span(block_start, block_end, tokens))
        elif _TABLE_CELL in text[block_start:block_end]:
            spans.extend(_table_rows(text, block_start, block_end, max_tokens=max_tokens))
        else:
            spans.extend(_sentences(text, block_start, block_end, max_tokens=max_tokens))
    yield from _pack(spans, heading=_joined(section, outer=heading), max_tokens=max_tokens, overlap=overlap)


def _descend(path: list[tuple[int, str]], level: int, label: str) -> list[tuple[int, str]]:
    """The heading path after a heading of ``level``: it replaces any heading of the same or a lower rank."""
    return [*(entry for entry in path if entry[0] < level), (level, label)]


def _joined(path: list[tuple[int, str]], *, outer: str = "") -> str:
    return " ".join(part for part in (outer, *(label for _, label in path)) if part)


def _blocks(text: str, start: int, end: int) -> Iterator[tuple[int, int, re.Match[str] | None]]:
    """Paragraphs (runs of non-blank lines) and markdown heading lines, trimmed of outer whitespace."""
    block: list[int] = []
    for line in _LINE.finditer(text, start, end):
        heading_match = _MD_HEADING.fullmatch(line.group())
        paragraph_break = not line.group().strip() or (block and text.count("\n", block[1], line.start()) > 1)
        if block and (heading_match or paragraph_break):
            yield *_trim(text, block[0], block[1]), None
            block = []
        if heading_match:
            yield line.start(), line.end(), heading_match
        elif line.group().strip():
            block = [block[0] if block else line.start(), line.end()]
    if block:
        yield *_trim(text, block[0], block[1]), None


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _table_rows(text: str, start: int, end: int, *, max_tokens: int) -> Iterator[_Span]:
    for line in _LINE.finditer(text, start, end):
        row_start, row_end = _trim(text, line.start(), line.end())
        if row_start < row_end:
            yield from _hard_split(text, row_start, row_end, max_tokens=max_tokens)


def _sentences(text: str, start: int, end: int, *, max_tokens: int) -> Iterator[_Span]:
    cursor = start
    for match in [*_SENTENCE_END.finditer(text, start, end), None]:
        cut = match.start() if match else end
        sentence_start, sentence_end = _trim(text, cursor, cut)
        if sentence_start < sentence_end:
            yield from _hard_split(text, sentence_start, sentence_end, max_tokens=max_tokens)
        cursor = max(cursor, cut)


def _hard_split(text: str, start: int, end: int, *, max_tokens: int) -> Iterator[_Span]:
    """Cut a run with no usable boundary at token starts so that no piece exceeds the budget."""
    token_starts = [m.start() for m in _TOKEN.finditer(text, start, end)]
    cuts = [start, *token_starts[max_tokens::max_tokens], end]
    for cut_start, cut_end in itertools.pairwise(cuts):
        piece_start, piece_end = _trim(text, cut_start, cut_end)
        yield _Span(piece_start, piece_end, count_tokens(text=text[piece_start:piece_end]))


def _pack(spans: list[_Span], *, heading: str, max_tokens: int, overlap: int) -> Iterator[tuple[int, int, str]]:
    """Greedy packing; a chunk cut for budget starts the next with its last spans (≤ ``overlap`` tokens)."""
    current: list[_Span] = []
    used = 0
    for span in spans:
        if current and used + span.tokens > max_tokens:
            yield current[0].start, current[-1].end, heading
            carried: list[_Span] = []
            for previous in reversed(current):
                carried_tokens = sum(s.tokens for s in carried) + previous.tokens
                if carried_tokens > overlap or carried_tokens + span.tokens > max_tokens:
                    break
                carried.insert(0, previous)
            current, used = carried, sum(s.tokens for s in carried)
        current.append(span)
        used += span.tokens
    if current:
        yield current[0].start, current[-1].end, heading
