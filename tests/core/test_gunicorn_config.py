"""gunicorn reads gunicorn.conf.py from the repository root; its hook starts the embedded mode's beat in each web
worker (tests/core/test_embedded_beat.py covers the beat itself)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_gunicorn_worker_starts_the_embedded_beat(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
        STORAGE_CACHE_DIR=str(tmp_path / "cache"),
    )
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "tigerplatform.wsgi:application",
        "--bind",
        f"127.0.0.1:{_free_port()}",
    ]
    server = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert server.stdout is not None
        for line in server.stdout:
            lines.append(line)
            if '"logger": "celery.beat"' in line and "beat: Starting" in line:
                started.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 180
        while not started.is_set() and server.poll() is None and time.monotonic() < deadline:
            started.wait(0.5)
        assert started.is_set(), "".join(lines[-40:])
        assert any("Booting worker" in line for line in lines)
    finally:
        server.terminate()
        server.wait(timeout=30)
