"""Bench scaffolding: a throwaway work directory and SQLite database, Django set up, platform servers, and the
tiny model the latency and training benches measure."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_workdir(prefix: str, *, keep_database_url: bool = False) -> Path:
    """A fresh work directory for this run, holding its SQLite database and API key epoch file (both set in the
    environment, so servers started later share them). ``keep_database_url``: a DATABASE_URL already set wins."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    if not (keep_database_url and os.environ.get("DATABASE_URL")):
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/db.sqlite3"
    os.environ["API_KEY_EPOCH_FILE"] = str(workdir / "epoch")
    return workdir


def setup_django() -> None:
    """Django set up and migrated in this process (on a throwaway SQLite database unless DATABASE_URL is set);
    httpx's line per request is silenced so that it does not drown the report."""
    sys.path.insert(0, str(ROOT))
    if "DATABASE_URL" not in os.environ:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/db.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tigerplatform.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def make_bench_model(out_dir: Path, *, hidden: int, layers: int, corpus_texts: Sequence[str] = ()) -> Path:
    """The tiny random-weight Llama (tigerbot family) the benches measure: ``hidden`` wide, ``layers`` deep, its
    MLP twice as wide; ``corpus_texts`` add to its tokenizer's vocabulary."""
    from workers.runtime.tiny import make_tiny_model

    return make_tiny_model(
        out_dir,
        family="tigerbot",
        hidden_size=hidden,
        num_layers=layers,
        intermediate_size=hidden * 2,
        corpus_texts=corpus_texts,
    )


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
