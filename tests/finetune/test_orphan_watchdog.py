"""A training process whose launcher died exits, although its event pipe is broken and the report cannot go out."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_an_orphaned_training_process_exits_with_its_event_pipe_broken(tmp_path):
    pid_file = tmp_path / "pid"
    trainer = (
        "import os, sys, time\n"
        "from workers.finetune.events import EventWriter\n"
        "from workers.finetune.train import _exit_when_orphaned\n"
        "_exit_when_orphaned(EventWriter(sys.stdout, enabled=True), interval_s=0.1)\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(120)\n"
    )
    # The launcher reads the trainer's events through a pipe, then dies without a word (SIGKILL, OOM).
    launcher = (
        "import os, subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {trainer!r}], stdout=subprocess.PIPE)\n"
        f"while not os.path.exists({str(pid_file)!r}) or not open({str(pid_file)!r}).read(): time.sleep(0.05)\n"
        "os._exit(0)\n"
    )
    subprocess.run(
        [sys.executable, "-c", launcher], env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60, check=True
    )
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert not _running(pid), "the orphaned training process is still running"
    finally:
        if _running(pid):
            os.kill(pid, 9)
