"""Without a broker, the web process runs CELERY_BEAT_SCHEDULE itself (Celery's beat on a thread, tasks eager)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.core.embedded_beat import start_embedded_beat
from tests.finetune.api_helpers import running_job
from tigerplatform.celery import app as celery_app


@contextmanager
def _celery_conf(**values: Any) -> Iterator[None]:
    saved = {key: celery_app.conf[key] for key in values}
    celery_app.conf.update(values)
    try:
        yield
    finally:
        celery_app.conf.update(saved)


@pytest.mark.django_db(transaction=True)
def test_the_schedule_runs_on_a_thread_of_the_process(make_tenant):
    job = running_job(make_tenant().user, heartbeat_at=timezone.now() - timedelta(hours=1))
    every_200_ms = {"finetune-fail-stale-jobs": {"task": "finetune.maintenance.fail_stale_jobs", "schedule": 0.2}}
    with _celery_conf(task_always_eager=True, beat_schedule=every_200_ms):
        service = start_embedded_beat(celery_app)
        assert service is not None
        try:
            deadline = time.monotonic() + 30
            while job.status != "failed" and time.monotonic() < deadline:
                time.sleep(0.2)
                job.refresh_from_db()
        finally:
            service.stop()
    assert job.status == "failed" and job.error["code"] == "worker_lost"


def test_with_a_broker_beat_is_left_to_celery_beat():
    with _celery_conf(task_always_eager=False):
        assert start_embedded_beat(celery_app) is None


def test_the_production_schedule_sweeps_every_kind_of_job():
    tasks = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}
    assert {
        "finetune.maintenance.fail_stale_jobs",
        "text.maintenance.fail_stale_jobs",
        "images.maintenance.fail_stale_jobs",
        "batches.maintenance.resume_stale",
    } <= tasks
