"""The JSON-lines event protocol between the training process (stdout) and the launcher.

Events: ``start`` {train_examples, skipped_examples, validation_examples, total_steps, resumed_from, pid},
``progress`` {step, total_steps, epoch, loss, learning_rate, tokens_per_second}, ``eval`` {step, eval_loss},
``checkpoint`` {path, step}, ``done`` {output_dir, metrics}, ``error`` {code, message}. Non-finite numbers are
sent as null so every line is strict JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any, TextIO

PROGRESS = "progress"
EVAL = "eval"
CHECKPOINT = "checkpoint"
START = "start"
DONE = "done"
ERROR = "error"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


class EventWriter:
    """Writes one event per line and flushes, so the launcher sees it at once; silent when ``enabled`` is
    False (the non-zero ranks of a multi-process run)."""

    def __init__(self, stream: TextIO, *, enabled: bool = True) -> None:
        self._stream = stream
        self._enabled = enabled

    def emit(self, event: str, **fields: Any) -> None:
        if not self._enabled:
            return
        self._stream.write(json.dumps({"event": event, **_finite(fields)}, ensure_ascii=False) + "\n")
        self._stream.flush()


def parse_event(line: str) -> dict[str, Any] | None:
    """The event on one stdout line, or None for anything else (stray library output)."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("event"), str) else None
