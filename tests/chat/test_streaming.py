from __future__ import annotations

import pytest

from workers.runtime.streaming import sendable_length


@pytest.mark.parametrize(
    ("text", "markers", "expected"),
    [
        ("hello", (), 5),
        ("hello", ("STOP",), 5),
        ("hello S", ("STOP",), 6),
        ("hello STO", ("STOP",), 6),
        ("hello STOP", ("STOP",), 10),
        ("a <tool", ("<tool_call>", "END"), 2),
        ("a E", ("<tool_call>", "END"), 2),
        ("aab", ("abc",), 1),
    ],
)
def test_partial_markers_are_held_back(text: str, markers: tuple[str, ...], expected: int) -> None:
    assert sendable_length(text=text, markers=markers) == expected
