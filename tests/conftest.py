"""Shared fixtures. Real PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, SQLite/in-process otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.models import ApiKey
from apps.accounts.services import api_key_create

ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = ROOT.parent / "shared"

requires_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (a real Redis)")


@pytest.fixture(autouse=True)
def _isolated(
    settings: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    from celery._state import _set_task_join_will_block

    from apps.accounts import throttling
    from tigerplatform.celery import app

    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    cache.clear()
    # Without Redis the rate counters live in the process; user ids repeat from one test database to the next.
    monkeypatch.setattr(throttling, "_local_counter", throttling._LocalCounter())
    # Tasks run in-process unless a test asks for a real worker (the `celery_worker` fixture).
    app.conf.task_always_eager = True
    # Celery's "never wait on a result here" flag is one for the whole process: an eager task sets it while it runs
    # and puts back what it found, so two running at once on two threads (an earlier test's server and its
    # background tasks) can leave it set. This process waits on serve results as the web side does.
    _set_task_join_will_block(False)
    yield
    cache.clear()


@dataclass
class Tenant:
    user: Any
    api_key: ApiKey
    key: str
    client: APIClient


@pytest.fixture
def make_tenant(db: None) -> Callable[..., Tenant]:
    def make(username: str = "alice", **key_options: Any) -> Tenant:
        user = get_user_model().objects.create_user(username=username)
        created = api_key_create(owner=user, name=f"{username}-key", **key_options)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.plaintext}")
        return Tenant(user=user, api_key=created.api_key, key=created.plaintext, client=client)

    return make


@pytest.fixture
def tenant(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant("alice")


@pytest.fixture
def other_tenant(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant("bob")


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@contextmanager
def threaded_worker(*, queues: list[str], concurrency: int) -> Iterator[Any]:
    """A real Celery worker (threads) in this process, consuming ``queues`` from Redis; tasks leave eager mode.

    The queues are purged first, so no message an earlier test left behind runs against this test's data. On exit
    the worker stops taking messages and the tasks it was running are waited for: Celery's test worker stops with a
    terminate, and a thread pool does not join its threads on terminate, so a task (a usage record, say) could still
    be writing while the test database is flushed.
    """
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (a real Redis)")
    from celery.contrib.testing.worker import start_worker

    from tigerplatform.celery import app

    app.control.purge()
    app.conf.task_always_eager = False
    try:
        with start_worker(
            app, pool="threads", concurrency=concurrency, perform_ping_check=False, loglevel="WARNING", queues=queues
        ) as worker:
            yield worker
        worker.pool.executor.shutdown(wait=True)
    finally:
        app.conf.task_always_eager = True


@contextmanager
def worker_process(*, log_path: Path, env: dict[str, str], queues: str = "default,ingest,train") -> Iterator[None]:
    """The jobs worker as `make run` starts it: a Celery process of its own on this test's database, with ``env``
    over this process's environment (its own MEDIA_ROOT, say, to stand for another host). Its log is printed on
    exit, so a failing test shows it."""
    database = connection.settings_dict
    url = (
        f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    )
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tigerplatform",
                "worker",
                "-Q",
                queues,
                "-c",
                "1",
                "-n",
                f"jobs-{os.getpid()}@%h",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": url, "OMP_NUM_THREADS": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    print(log_path.read_text()[-20_000:])


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[Any]:
    """A real Celery worker (threads, all queues) consuming from Redis, for the duration of the test."""
    with threaded_worker(queues=["default", "ingest", "serve", "train"], concurrency=2) as worker:
        yield worker
