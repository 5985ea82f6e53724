"""The child process boundary: a killed, stuck or memory-hungry extraction ends as a failed result,
never as an exception or a hang in the caller, and leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.text.conftest import MakePdf, text_page
from workers.pdf import ErrorCode, Status, extract_pdf, inspect_pdf

# About a million text operators: pypdf needs well over ten seconds for this page.
SLOW_PAGE = b"BT /F1 12 Tf 72 720 Td " + b"(x) Tj " * 1_000_000 + b"ET"


def _gone(pid: int) -> bool:
    """True when neither the process nor anything in its process group is left."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def slow_pdf(make_pdf: MakePdf) -> Path:
    return make_pdf(contents=[SLOW_PAGE], name="slow.pdf")


def test_sigkill_mid_extraction_gives_worker_crashed(slow_pdf: Path) -> None:
    pids: list[int] = []

    def kill_soon(pid: int) -> None:
        pids.append(pid)
        threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()

    started = time.monotonic()
    result = extract_pdf(path=slow_pdf, timeout_s=30, on_start=kill_soon)
    assert (result.status, result.error_code) == (Status.FAILED, ErrorCode.WORKER_CRASHED)
    assert "SIGKILL" in (result.error_message or "")
    assert time.monotonic() - started < 10
    assert _gone(pids[0])


def test_timeout_kills_the_child(slow_pdf: Path) -> None:
    pids: list[int] = []
    started = time.monotonic()
    result = extract_pdf(path=slow_pdf, timeout_s=1.5, on_start=pids.append)
    elapsed = time.monotonic() - started
    assert (result.status, result.error_code) == (Status.FAILED, ErrorCode.TIMEOUT)
    assert "1.5 s" in (result.error_message or "")
    assert 1.5 <= elapsed < 5
    assert _gone(pids[0])


def test_memory_limit(make_pdf: MakePdf) -> None:
    # 70 MB of content (below pypdf's own 75 MB decompression cap) compresses to a few kilobytes.
    path = make_pdf(contents=[text_page("Hi") + b" " * 70_000_000])
    result = extract_pdf(path=path, memory_mb=100)
    assert (result.status, result.error_code) == (Status.FAILED, ErrorCode.MEMORY_LIMIT)
    assert "100 MiB" in (result.error_message or "")


def test_an_ordinary_file_fits_the_memory_limit_used_above(pdf_root: Path) -> None:
    result = extract_pdf(path=pdf_root / "pypdf/resources/crazyones.pdf", memory_mb=100)
    assert result.status is Status.SUCCEEDED


def test_on_start_failure_kills_the_child_and_propagates(slow_pdf: Path) -> None:
    pids: list[int] = []

    def refuse(pid: int) -> None:
        pids.append(pid)
        raise RuntimeError("caller gave up")

    with pytest.raises(RuntimeError, match="caller gave up"):
        extract_pdf(path=slow_pdf, on_start=refuse)
    assert _gone(pids[0])


def test_inspect_is_protected_too(slow_pdf: Path) -> None:
    pids: list[int] = []

    def kill_now(pid: int) -> None:
        pids.append(pid)
        os.kill(pid, signal.SIGKILL)

    result = inspect_pdf(path=slow_pdf, on_start=kill_now)
    assert result.error_code is ErrorCode.WORKER_CRASHED
    assert _gone(pids[0])


def test_inspect_does_not_extract(slow_pdf: Path) -> None:
    info = inspect_pdf(path=slow_pdf, timeout_s=10)
    assert (info.status, info.page_count, info.encrypted) == (Status.SUCCEEDED, 1, False)


@pytest.mark.parametrize(("timeout_s", "memory_mb"), [(0, 100), (-1, 100), (1, 0)])
def test_nonsense_limits_are_a_programming_error(pdf_root: Path, timeout_s: float, memory_mb: int) -> None:
    with pytest.raises(ValueError):
        extract_pdf(path=pdf_root / "pypdf/resources/crazyones.pdf", timeout_s=timeout_s, memory_mb=memory_mb)


def test_cpu_limit_stops_a_child_whose_parent_is_gone(slow_pdf: Path) -> None:
    """Run the child protocol with nobody enforcing the wall time: the CPU limit still ends it."""
    request = {
        "operation": "extract",
        "path": str(slow_pdf),
        "password": None,
        "pages": None,
        "layout": False,
        "memory_mb": 512,
        "timeout_s": 1,
    }
    child = subprocess.run(
        [sys.executable, "-m", "workers.pdf.child"],
        input=json.dumps(request).encode(),
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert child.returncode in (-signal.SIGXCPU, -signal.SIGKILL)
    assert child.stdout == b""
