"""Runs one request in a fresh child process under a wall-time limit and an address-space limit.

A plain subprocess rather than ``multiprocessing``: Celery's prefork pool processes are daemonic and
may not start multiprocessing children, and a fresh interpreter inherits no state from the worker.
The child leads its own session, so on a timeout the whole process group is killed; the password
travels on stdin, never on the command line where ``ps`` would show it. The time limit counts from
the start of the child, interpreter start-up (a fraction of a second) included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from workers.pdf.child import EXIT_MEMORY_LIMIT
from workers.pdf.result import ErrorCode

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_STDERR_TAIL_BYTES = 400


@dataclass(frozen=True, slots=True)
class ChildFailure:
    code: ErrorCode
    message: str


def run_in_child(
    *,
    request: dict[str, Any],
    timeout_s: float,
    memory_mb: int,
    on_start: Callable[[int], None] | None = None,
) -> dict[str, Any] | ChildFailure:
    """The child's JSON result, or why there is none. ``on_start`` receives the child's PID as soon
    as it exists; if it raises, the child is killed and the exception propagates."""
    python_path = os.pathsep.join(filter(None, [str(_PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryFile() as stderr:
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "workers.pdf.child"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env={**os.environ, "PYTHONPATH": python_path},
                start_new_session=True,
            )
        except OSError as exc:
            return ChildFailure(ErrorCode.WORKER_CRASHED, f"could not start the extraction process: {exc}")
        try:
            if on_start is not None:
                on_start(child.pid)
            stdout, _ = child.communicate(
                json.dumps({**request, "memory_mb": memory_mb, "timeout_s": timeout_s}).encode(), timeout_s
            )
        except subprocess.TimeoutExpired:
            return ChildFailure(ErrorCode.TIMEOUT, f"extraction took longer than {timeout_s:g} s and was stopped")
        finally:
            # Also reached when on_start raises or the caller is interrupted (a Celery soft time limit).
            if child.returncode is None:
                _kill_group(child)
        return _interpret(returncode=child.returncode, stdout=stdout, stderr=stderr, memory_mb=memory_mb)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    # Until the child is reaped its PID (and so its group ID) cannot be reused, so this cannot hit
    # an unrelated process group.
    with suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.communicate()


def _interpret(*, returncode: int, stdout: bytes, stderr: IO[bytes], memory_mb: int) -> dict[str, Any] | ChildFailure:
    if returncode == EXIT_MEMORY_LIMIT:
        return ChildFailure(ErrorCode.MEMORY_LIMIT, f"extraction needed more than {memory_mb} MiB and was stopped")
    if returncode < 0:
        return ChildFailure(
            ErrorCode.WORKER_CRASHED, f"the extraction process was killed by {_signal_name(-returncode)}"
        )
    if returncode != 0:
        return ChildFailure(
            ErrorCode.WORKER_CRASHED,
            f"the extraction process exited with status {returncode}: {_tail(stderr)}",
        )
    try:
        result = json.loads(stdout)
    except ValueError:
        result = None
    if not isinstance(result, dict):
        return ChildFailure(ErrorCode.WORKER_CRASHED, "the extraction process ended without a result")
    return result


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail(stream: IO[bytes]) -> str:
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - _STDERR_TAIL_BYTES))
    return stream.read().decode("utf-8", errors="replace").strip()
