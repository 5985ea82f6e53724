from __future__ import annotations

import pytest
from django.conf import settings

from apps.core.tasks import ping
from tigerplatform.celery import app, queue_for_task


def test_routes_send_tasks_to_their_queues():
    assert queue_for_task("chat.generate") == "serve"
    assert queue_for_task("finetune.train") == "train"
    assert queue_for_task("finetune.maintenance.fail_stale_jobs") == "default"
    assert queue_for_task("plugins.ingest_document") == "ingest"
    assert queue_for_task("core.ping") == "default"
    assert queue_for_task("something.else") == "default"


def test_per_queue_time_limits_are_applied():
    task = app.tasks["core.ping"]
    soft, hard = settings.CELERY_QUEUE_TIME_LIMITS["default"]
    assert (task.soft_time_limit, task.time_limit) == (soft, hard)


def test_visibility_timeout_outlasts_the_longest_task():
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] > settings.CELERY_LONGEST_TASK_S
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_serializer == "json"


def test_eager_round_trip_in_embedded_mode():
    assert ping.delay("x").get(timeout=5) == "pong:x"


@pytest.mark.redis
def test_round_trip_through_real_redis_and_worker(celery_worker):
    result = ping.delay("hello")
    assert result.get(timeout=20) == "pong:hello"
    assert result.state == "SUCCESS"
    assert app.control.ping(timeout=2.0)  # the worker answers on the broker too
