"""Redis going away while a streamed answer is in flight (serve-queue mode): the client gets a final error event in
its dialect and a stream that ends cleanly, not a cut connection. Redis here is a server of the test's own, killed
mid-stream (never the machine's shared one); it is the stream channel, the Celery broker and the result backend."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.chat import streams
from apps.chat.models import ModelEndpoint
from apps.chat.selectors import endpoint_spec
from apps.core import serve_liveness
from bench._stack import Redis
from tests.conftest import threaded_worker
from workers.runtime import engine

from .conftest import RAMBLE

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")


def _reset_celery_connections(app: Any) -> None:
    # The app keeps its broker pool and result backend once made; they must be made again for the new URLs.
    app._pool = None
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local = threading.local()


def _reset_redis_clients() -> None:
    # Each module keeps one client for the URL it first saw.
    streams._client.cache_clear()
    serve_liveness._client.cache_clear()


@pytest.fixture
def own_redis(tmp_path: Path, settings: Any) -> Iterator[Redis]:
    """A redis-server of this test's own, as the stream channel, Celery broker and result backend."""
    from tigerplatform.celery import app

    server = Redis(workdir=tmp_path)
    server.start()
    saved = app.conf.broker_url, app.conf.result_backend
    settings.REDIS_URL = server.url
    app.conf.broker_url = app.conf.result_backend = server.url
    _reset_celery_connections(app)
    _reset_redis_clients()
    try:
        yield server
    finally:
        server.kill()
        app.conf.broker_url, app.conf.result_backend = saved
        _reset_celery_connections(app)
        _reset_redis_clients()


def _events(body: bytes) -> list[Any]:
    frames = [frame[len("data: ") :] for frame in body.decode().split("\n\n") if frame.startswith("data: ")]
    return [frame if frame == "[DONE]" else json.loads(frame) for frame in frames]


@pytest.mark.parametrize(
    "dialect",
    [
        {"messages": [{"role": "user", "content": "hi"}]},
        {"query": "hi"},
    ],
    ids=["openai", "tigerbot"],
)
def test_redis_lost_mid_stream_ends_with_an_error_event(
    own_redis: Redis, tenant: Any, rambler: ModelEndpoint, dialect: dict[str, Any], caplog: Any
) -> None:
    body = {"model": "rambler", "stream": True, "temperature": 1.0, "seed": RAMBLE["seed"], **dialect}
    with threaded_worker(queues=["serve"], concurrency=1):
        try:
            response = tenant.client.post("/v1/chat/completions", body, format="json")
            assert response.status_code == 200
            chunks = iter(response.streaming_content)
            received = next(chunks)
            while b'"new_text": "' not in received and b'"content": "' not in received.replace(b'"content": ""', b""):
                received += next(chunks)  # the worker is generating
            own_redis.kill()
            with caplog.at_level(logging.WARNING):
                received += b"".join(chunks)  # a cut stream raises here
                # The worker (in this process, so its engine is this process's) stops generating for nobody.
                live = engine.local_runtime.engine(spec=endpoint_spec(rambler))
                deadline = time.monotonic() + 2  # the whole answer takes longer
                while live.pending and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert live.pending == 0
        finally:
            if not own_redis.running:
                own_redis.start()  # so that the worker, reconnecting, can be stopped

    events = _events(received)
    if "messages" in dialect:
        assert events[-1] == "[DONE]"
        error = events[-2]["error"]
    else:
        assert events[-1]["finished"] is True
        error = events[-1]["error"]
    assert error["code"] == "service_unavailable", error
    # An outage, not a bug: warnings only, but for the worker's own broker connection, which Celery logs as errors
    # while it reconnects (its task abandons the stream with a warning).
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and not r.name.startswith("celery.worker.")]
    assert not errors, caplog.text
