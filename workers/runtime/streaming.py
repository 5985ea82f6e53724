"""Deciding how much of a growing text is safe to send while generation is still running."""

from __future__ import annotations

from collections.abc import Sequence


def sendable_length(*, text: str, markers: Sequence[str]) -> int:
    """Length of the prefix of ``text`` that cannot turn into (part of) one of ``markers`` later.

    A suffix of ``text`` that is the start of a marker is held back, because the next tokens may complete it.
    """
    held = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), held, -1):
            if text.endswith(marker[:size]):
                held = size
                break
    return len(text) - held
