"""The extraction child process: ``python -m workers.pdf.child``, started only by ``isolation.py``.

Protocol: one JSON request on stdin (``operation`` "extract" or "inspect", ``path``, ``password``,
``pages``, ``layout``, ``memory_mb``, ``timeout_s``), one JSON result on stdout. Exit status 0 means
a result was written, a failed extraction included; ``EXIT_MEMORY_LIMIT`` means the address-space
limit was hit. Any other ending is a crash for the parent to report.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import sys
from typing import Any

from workers.pdf.extraction import extract_document, inspect_document

EXIT_MEMORY_LIMIT = 3


def _limit_resources(*, memory_mb: int, timeout_s: float) -> None:
    _cap(resource.RLIMIT_AS, soft=memory_mb * 1024 * 1024, hard=memory_mb * 1024 * 1024)
    # The parent enforces the wall time; the CPU limit is the backstop for when the parent dies
    # (e.g. a Celery hard time limit) and nobody is left to kill a child stuck in a loop. A
    # single-threaded child never uses more CPU than wall time, so the parent's limit fires first.
    cpu_s = math.ceil(timeout_s) + 1
    _cap(resource.RLIMIT_CPU, soft=cpu_s, hard=cpu_s + 1)
    # A crash on a hostile file must not leave core dumps full of document memory behind.
    _cap(resource.RLIMIT_CORE, soft=0, hard=0)


def _cap(kind: int, *, soft: int, hard: int) -> None:
    _, current_hard = resource.getrlimit(kind)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(kind, (soft, hard))


def _run(request: dict[str, Any]) -> dict[str, Any]:
    if request["operation"] == "inspect":
        return inspect_document(path=request["path"], password=request["password"]).to_dict()
    return extract_document(
        path=request["path"], password=request["password"], pages=request["pages"], layout=request["layout"]
    ).to_dict()


def main() -> int:
    request = json.loads(sys.stdin.buffer.read())
    result_stream = sys.stdout
    # Only the result may reach the real stdout; anything a library prints goes to stderr.
    sys.stdout = sys.stderr
    _limit_resources(memory_mb=request["memory_mb"], timeout_s=request["timeout_s"])
    # pypdf logs a warning for every object it repairs, an unbounded stream on a hostile file;
    # only a crash's traceback is worth keeping from stderr.
    logging.disable(logging.WARNING)
    try:
        payload = json.dumps(_run(request))
    except MemoryError:
        # Exit without unwinding: anything more (a traceback, a JSON error result) may allocate.
        os._exit(EXIT_MEMORY_LIMIT)
    result_stream.write(payload)
    result_stream.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
