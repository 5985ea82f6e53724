"""Trainer checkpoints in a job's output directory (``checkpoint-<step>`` folders)."""

from __future__ import annotations

import re
from pathlib import Path

_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def list_checkpoints(output_dir: str | Path) -> list[str]:
    """Paths of the complete checkpoints in ``output_dir``, oldest step first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _CHECKPOINT.fullmatch(child.name)
        # trainer_state.json is written last: a folder without it is a checkpoint cut short by a kill.
        if match and child.is_dir() and (child / "trainer_state.json").is_file():
            found.append((int(match.group(1)), str(child)))
    return [path for _, path in sorted(found)]


def last_checkpoint(output_dir: str | Path) -> str | None:
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None
