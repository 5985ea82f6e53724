"""A request on the `serve` queue fails fast (503) when no serve worker takes it or the one that took it dies,
instead of waiting CHAT_TASK_TIMEOUT_S: a real worker, Redis and model, no fakes."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from apps.chat.models import ModelEndpoint
from apps.core.serve_liveness import ServeHeartbeat
from tests.conftest import ROOT, requires_redis, threaded_worker

from .conftest import GREETING_ANSWER, RAMBLE, ramble_stream

pytestmark = [pytest.mark.redis, requires_redis]

# A serve worker as `make run` starts it.
CELERY_SERVE = [sys.executable, "-m", *shlex.split("celery -A tigerplatform worker -Q serve -P threads -c 2 -l info")]
HELLO = {"messages": [{"role": "user", "content": "你好"}], "temperature": 0}


@pytest.fixture
def keys() -> redis.Redis:
    return redis.Redis.from_url(django_settings.REDIS_URL, decode_responses=True)


@pytest.fixture
def chatty(transactional_db, chatty_model) -> ModelEndpoint:
    return ModelEndpoint.objects.create(name="chatty", family="tigerbot", path=str(chatty_model), max_new_tokens=32)


@pytest.fixture
def no_worker(broker_without_worker, settings, keys):
    # A worker that an earlier test killed leaves its key for up to its TTL: none runs now.
    for left in keys.scan_iter(match="tp:serve:worker:*"):
        keys.delete(left)
    settings.SERVE_CLAIM_TIMEOUT_S = 1
    settings.CHAT_TASK_TIMEOUT_S = settings.CHAT_STREAM_FIRST_TIMEOUT_S = 60


def _sse(response) -> list:
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line[6:]) for line in body.split("\n\n") if line.startswith("data: {")]


def _stop_heartbeat(worker) -> None:
    """What a dead worker looks like to the web side: its liveness key stops being refreshed and is gone (here at
    once; the worker process itself keeps running, which a real death would not)."""
    next(step for step in worker.steps if isinstance(step, ServeHeartbeat)).stop(worker)


def test_no_serving_worker_is_a_quick_503(no_worker, tenant, chatty):
    for stream in (False, True):
        started = time.monotonic()
        response = tenant.client.post(
            "/v1/chat/completions", {"model": "chatty", **HELLO, "stream": stream}, format="json"
        )
        assert response.status_code == 503, response
        assert response.json()["error"]["code"] == "no_serving_worker"
        assert response["Retry-After"] == "10"
        assert time.monotonic() - started < 8


def test_a_request_no_busy_worker_takes_is_model_overloaded(no_worker, tenant, chatty, keys):
    # A worker that is alive but has no free thread: its key is there, and nothing consumes the queue. (Keeping a
    # real worker's every thread busy for the claim timeout would make this test as slow as that generation.)
    keys.set("tp:serve:worker:busy@test", "alive", ex=30)
    try:
        response = tenant.client.post("/v1/chat/completions", {"model": "chatty", **HELLO}, format="json")
    finally:
        keys.delete("tp:serve:worker:busy@test")
    assert response.status_code == 503, response
    assert response.json()["error"]["code"] == "model_overloaded"
    assert response["Retry-After"] == "10"


def test_no_serving_worker_for_embeddings(no_worker, tenant):
    from apps.embeddings.services import embedding_models_register_bundled

    embedding_models_register_bundled()
    response = tenant.client.post("/v1/embeddings", {"model": "all-minilm-l6-v2", "input": ["hi"]}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_serving_worker"


def test_a_serve_worker_announces_itself_and_what_it_took(tenant, chatty, keys):
    for stale in keys.scan_iter(match="tp:serve:claim:*"):
        keys.delete(stale)
    with threaded_worker(queues=["serve"], concurrency=2) as worker:
        alive = f"tp:serve:worker:{worker.hostname}"
        assert 0 < keys.ttl(alive) <= 10
        plain = tenant.client.post("/v1/chat/completions", {"model": "chatty", **HELLO}, format="json")
        assert plain.json()["choices"][0]["message"]["content"] == GREETING_ANSWER
        events = _sse(
            tenant.client.post("/v1/chat/completions", {"model": "chatty", **HELLO, "stream": True}, format="json")
        )
        assert "".join(e["choices"][0]["delta"].get("content", "") for e in events) == GREETING_ANSWER
        claims = [keys.get(key) for key in keys.scan_iter(match="tp:serve:claim:*")]
        assert claims == [worker.hostname] * 2
        time.sleep(4)  # longer than a beat: the key is refreshed, not just set once
        assert keys.ttl(alive) > 10 - 4
    assert not keys.exists(alive)  # a worker that stops says so at once
    with threaded_worker(queues=["default"], concurrency=1) as jobs:
        assert not keys.exists(f"tp:serve:worker:{jobs.hostname}")  # not a serve worker


def test_an_answer_that_takes_many_slices_arrives(celery_worker, tenant, chatty, monkeypatch):
    from apps.core import serve_liveness

    monkeypatch.setattr(serve_liveness, "SLICE_S", 0.01)  # the answer takes ~0.2 s: a look at the keys every 10 ms
    body = tenant.client.post("/v1/chat/completions", {"model": "chatty", **HELLO, "n": 2}, format="json").json()
    assert [c["message"]["content"] for c in body["choices"]] == [GREETING_ANSWER] * 2


def test_a_worker_lost_mid_stream_ends_it_with_worker_lost(celery_worker, tenant, rambler, keys):
    from apps.chat import streams

    _, chunks = ramble_stream(tenant.client)
    # The worker "dies": its heartbeat stops and it falls silent (told to stop generating, without a word to the
    # reader). A real death (the process killed) is the next test.
    _stop_heartbeat(celery_worker)
    (stream_key,) = keys.scan_iter(match="tp:chatstream:*")
    streams.cancel(request_id=stream_key.removeprefix("tp:chatstream:"))
    started = time.monotonic()
    body = b"".join(chunks).decode()  # what was sent before the silence, then the error
    assert time.monotonic() - started < 2 + 3 + 2 + 3  # a slice, the grace of a beat, a slice, slack
    last = [json.loads(line[6:]) for line in body.split("\n\n") if line.startswith("data: {")][-1]
    assert last["error"]["code"] == "worker_lost"


@contextmanager
def serve_worker_process(*, log_path: Path) -> Iterator[subprocess.Popen]:
    """A serve worker in a process of its own (so that it can be killed); serve tasks use no database, so it needs
    only Redis."""
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [*CELERY_SERVE, "-n", f"serve-kill-{os.getpid()}@%h"],
            cwd=ROOT,
            env={**os.environ, "REDIS_URL": django_settings.REDIS_URL, "OMP_NUM_THREADS": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield worker
        finally:
            worker.kill()
            worker.wait(timeout=60)
    print(log_path.read_text()[-20_000:])


def _wait_for(find, *, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while (found := find()) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


@pytest.mark.usefixtures("broker_without_worker")
def test_a_worker_killed_before_answering_is_worker_lost(tenant, rambler, keys, tmp_path, settings):
    settings.CHAT_TASK_TIMEOUT_S = 60  # what it would wait without liveness (600 by default)
    with serve_worker_process(log_path=tmp_path / "serve.log") as worker:
        prefix = f"tp:serve:worker:serve-kill-{os.getpid()}@"
        alive = _wait_for(lambda: next(keys.scan_iter(match=f"{prefix}*"), None), timeout_s=90)
        assert alive, "the serve worker did not start"
        name = alive.removeprefix("tp:serve:worker:")
        killed: list[float] = []

        def claim() -> str | None:
            return next((key for key in keys.scan_iter(match="tp:serve:claim:*") if keys.get(key) == name), None)

        def kill_once_claimed() -> None:
            if _wait_for(claim, timeout_s=30):
                worker.send_signal(signal.SIGKILL)  # mid-answer: the model loads, then 2000 tokens take seconds
                killed.append(time.monotonic())

        killer = threading.Thread(target=kill_once_claimed)
        killer.start()
        response = tenant.client.post(
            "/v1/chat/completions",
            {"model": "rambler", **RAMBLE},
            format="json",
        )
        killer.join()
        assert killed, "the worker never took the task"
        assert response.status_code == 503, response.json()
        assert response.json()["error"]["code"] == "worker_lost"
        # Its key outlives it by at most its TTL; then a slice, the grace of a beat, a slice, and slack.
        assert time.monotonic() - killed[0] < 10 + 2 + 3 + 2 + 3


def test_one_look_at_a_missing_worker_key_is_not_a_death(keys, monkeypatch):
    """A Redis that restarted empty has lost every worker's key until its next beat: not yet ``worker_lost``."""
    from apps.core import serve_liveness

    monkeypatch.setattr(serve_liveness, "BEAT_S", 0.2)
    keys.set("tp:serve:claim:liveness-grace", "nobody@nowhere", ex=60)
    watch = serve_liveness.Watch("liveness-grace")
    watch.check()
    time.sleep(0.3)
    with pytest.raises(serve_liveness.Unavailable) as lost:
        watch.check()
    assert lost.value.code == "worker_lost"


def test_a_claim_gone_from_a_live_worker_with_no_answer_is_request_lost(keys, monkeypatch):
    """What a Redis restart leaves of a task that was running, or of its stored answer: a worker that beats on,
    and no claim renewed for the task. The worker's side is played here by setting its keys by hand."""
    from apps.core import serve_liveness

    monkeypatch.setattr(serve_liveness, "BEAT_S", 0.2)
    keys.set("tp:serve:worker:alive@test", "alive", ex=60)
    keys.set("tp:serve:claim:liveness-lost", "alive@test", ex=60)
    try:
        watch = serve_liveness.Watch("liveness-lost")
        watch.check()  # taken, by a live worker
        keys.delete("tp:serve:claim:liveness-lost")
        watch.check()  # one look is not enough (the worker renews it within a beat after a restart)
        time.sleep(0.3)
        with pytest.raises(serve_liveness.Unavailable) as lost:
            watch.check()
        assert lost.value.code == "request_lost"
    finally:
        keys.delete("tp:serve:worker:alive@test")


def test_a_running_task_keeps_its_claim_and_an_ended_one_drops_it(keys, monkeypatch):
    """The claim lives as long as a worker's key and is renewed while the task runs: Celery's own task signals, sent
    here as a serve worker sends them around a task."""
    from celery import signals

    from apps.chat.tasks import generate_task
    from apps.core import serve_liveness

    monkeypatch.setattr(serve_liveness, "_worker_name", "claims@test")
    monkeypatch.setattr(serve_liveness, "WORKER_TTL_S", 4)
    claim = "tp:serve:claim:liveness-renewed"
    signals.task_prerun.send(sender=generate_task, task_id="liveness-renewed", task=generate_task, args=(), kwargs={})
    try:
        time.sleep(4.5)  # past the claim's TTL: renewed (within a beat) while the task runs
        assert keys.get(claim) == "claims@test" and keys.ttl(claim) <= 4
    finally:
        signals.task_postrun.send(
            sender=generate_task, task_id="liveness-renewed", task=generate_task, args=(), kwargs={}, retval=None
        )
    assert _wait_for(lambda: None if keys.exists(claim) else True, timeout_s=6)


def test_embedded_mode_records_nothing(tenant, chatty, keys):
    for stale in keys.scan_iter(match="tp:serve:*"):
        keys.delete(stale)
    response = tenant.client.post("/v1/chat/completions", {"model": "chatty", **HELLO}, format="json")
    assert response.json()["choices"][0]["message"]["content"] == GREETING_ANSWER
    assert not list(keys.scan_iter(match="tp:serve:*"))
