"""Processes the web's /metrics cannot see in memory: a serving process on the same host (multiprocess mode,
PROMETHEUS_MULTIPROC_DIR) and a worker on another host (its own exporter on METRICS_PORT)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from celery.signals import worker_ready
from django.test import Client

from apps.metrics import worker_exporter
from tests.metrics.conftest import sample_in, scrape_text

ROOT = Path(__file__).resolve().parents[2]

SERVE_ONCE = """
import sys
import torch
from workers.runtime.local import LocalRuntime
from workers.runtime.specs import ChatMessage, GenerationRequest, ModelSpec, SamplingParams
torch.set_num_threads(1)
runtime = LocalRuntime()
spec = ModelSpec(name="elsewhere", family="tigerbot", path=sys.argv[1], max_new_tokens=5)
request = GenerationRequest(spec=spec, messages=[ChatMessage(role="user", content="hi")],
                            params=SamplingParams(temperature=1.0))
result = runtime.generate(request=request)
runtime.close()
print(result.completion_tokens)
"""


def test_a_serving_process_on_the_host_shows_in_the_web_metrics(db, metered_model, tmp_path, monkeypatch):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    served = subprocess.run(
        [sys.executable, "-c", SERVE_ONCE, str(metered_model)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    completion_tokens = int(served.stdout.strip().splitlines()[-1])

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    text = scrape_text(Client())
    assert sample_in(text, "tigerplatform_generated_tokens_total", model="elsewhere") == completion_tokens
    assert sample_in(text, "tigerplatform_time_to_first_token_seconds_count", model="elsewhere") == 1
    assert sample_in(text, "tigerplatform_engine_requests_active", model="elsewhere") == 0
    assert sample_in(text, "tigerplatform_progress_collector_up") == 1  # the database side is still there


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_worker_with_metrics_port_serves_its_own_metrics(db, settings, monkeypatch):
    settings.METRICS_PORT = _free_port()
    monkeypatch.setattr(worker_exporter, "exporter", None)
    worker_ready.send(sender=None)
    assert worker_exporter.exporter is not None
    server, thread = worker_exporter.exporter
    try:
        response = httpx.get(f"http://127.0.0.1:{settings.METRICS_PORT}/metrics", timeout=10)
        assert response.status_code == 200
        assert "# TYPE tigerplatform_celery_tasks_total counter" in response.text
        # Progress read from the database is the web's to report, once, not every worker's.
        assert "tigerplatform_progress_collector_up" not in response.text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
