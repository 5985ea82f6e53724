"""Chat never waits behind jobs: with Redis, a serving worker (queue ``serve`` only, the way `make run` and
compose start it) answers while a separate jobs worker process trains."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from apps.chat.models import ModelEndpoint
from apps.finetune.models import FineTuneJob
from tests.conftest import requires_redis, threaded_worker, worker_process

from .api_helpers import FAST_LEARNING, alpaca_jsonl, wait_for, wait_for_training_stopped

pytestmark = [pytest.mark.slow, pytest.mark.redis, requires_redis]


@pytest.fixture
def serve_worker(transactional_db: None) -> Iterator[None]:
    """The serving worker, in this process: a thread pool on the `serve` queue only."""
    with threaded_worker(queues=["serve"], concurrency=4):
        yield


@pytest.fixture
def jobs_worker(serve_worker: None, tmp_path: Path) -> Iterator[None]:
    """The jobs worker, a process of its own on this test's database, as `make run` starts it."""
    env = {
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "MODELS_DIR": str(settings.MODELS_DIR),
        "FINETUNE_DIR": str(settings.FINETUNE_DIR),
    }
    with worker_process(log_path=tmp_path / "jobs-worker.log", env=env):
        yield


@pytest.fixture
def base(transactional_db: None, identity_base: Path) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="identity-base",
        family="tigerbot",
        path=str(identity_base),
        max_new_tokens=32,
        max_input_tokens=256,
        is_default=True,
    )


def _chat_seconds(client) -> float:
    start = time.perf_counter()
    response = client.post(
        "/v1/chat/completions",
        {"query": "Tell me about yourself.", "temperature": 0, "max_new_tokens": 32},
        format="json",
    )
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.json()
    return elapsed


def test_a_chat_completes_while_a_training_job_runs(jobs_worker, tenant, base, identity_examples):
    idle = statistics.median(_chat_seconds(tenant.client) for _ in range(5))
    endless = {**FAST_LEARNING, "max_steps": 100_000}
    created = tenant.client.post(
        "/v1/finetunes",
        {"name": "busy", "file": alpaca_jsonl(identity_examples), "hyperparameters": json.dumps(endless)},
        format="multipart",
    )
    assert created.status_code == 201, created.json()
    job_id = created.json()["finetune_id"]
    try:
        wait_for(
            job_id,
            statuses=(FineTuneJob.Status.RUNNING,),
            timeout_s=300,
            predicate=lambda job: (job.progress or {}).get("step", 0) > 0,
        )
        busy = statistics.median(_chat_seconds(tenant.client) for _ in range(5))
        assert FineTuneJob.objects.get(pk=job_id).status == FineTuneJob.Status.RUNNING  # still training meanwhile
    finally:
        tenant.client.post(f"/v1/finetunes/{job_id}/cancel")
        wait_for_training_stopped(job_id, timeout_s=120)
    assert busy < 2 * idle, f"chat took {busy:.3f} s during training, {idle:.3f} s idle"
