"""Page selections such as ``"1-3,5"``: 1-based, inclusive, comma-separated pages and ranges.

Parsing needs no document, so a request can be rejected before any PDF is opened; resolving against
a page count happens once the document is open. Overlaps are merged and pages come back in document
order, whatever order the selection named them in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PART = re.compile(r"^\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?$")


class PageRangeError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class PageRange:
    first: int
    last: int


def parse_page_ranges(*, spec: str) -> tuple[PageRange, ...]:
    ranges: list[PageRange] = []
    for part in spec.split(","):
        match = _PART.match(part)
        if match is None:
            raise PageRangeError(f"invalid page selection {spec!r}: expected pages like '1-3,5'")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if first < 1:
            raise PageRangeError(f"invalid page selection {spec!r}: pages are numbered from 1")
        if last < first:
            raise PageRangeError(f"invalid page selection {spec!r}: range {first}-{last} runs backwards")
        ranges.append(PageRange(first=first, last=last))
    return tuple(ranges)


def select_pages(*, ranges: tuple[PageRange, ...], page_count: int) -> list[int]:
    """The selected 1-based page numbers; bounds are checked before any list is built so that a
    selection like ``1-1000000000`` costs nothing."""
    for page_range in ranges:
        if page_range.last > page_count:
            raise PageRangeError(f"page {page_range.last} is out of range: the document has {page_count} page(s)")
    return sorted({page for r in ranges for page in range(r.first, r.last + 1)})
