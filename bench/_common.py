"""Bench scaffolding: a throwaway SQLite database (unless DATABASE_URL is set) and Django set up."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/db.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tigerplatform.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def bench_port() -> int:
    """A free-ish local port, the same for every server this bench run starts."""
    return 18000 + os.getpid() % 1000


def gunicorn_command(*, port: int, threads: int, extra: Sequence[str] = ()) -> list[str]:
    """The command line of one gunicorn process of the platform on ``port``."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "tigerplatform.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        str(threads),
        *extra,
        "--log-level",
        "warning",
    ]


@contextmanager
def platform_server(*, threads: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real gunicorn server of the platform (one process, ``threads`` threads) on a free-ish local port,
    answering /healthz; yields its base URL and stops it on exit."""
    import httpx

    port = bench_port()
    server = subprocess.Popen(
        gunicorn_command(port=port, threads=threads, extra=("--timeout", "0")),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{url}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait()
