"""Celery task counts and durations by queue and final state, from Celery's signals (in workers and for tasks run
in-process alike). The queue is the one the task's name routes to (``CELERY_TASK_ROUTES``)."""

from __future__ import annotations

import time
from typing import Any

from celery.signals import task_postrun, task_prerun
from prometheus_client import Counter, Gauge, Histogram

from tigerplatform.celery import queue_for_task

# From a ping to a two-day fine-tune.
DURATION_BUCKETS = (
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    12 * 3600.0,
    48 * 3600.0,
)

TASKS = Counter(
    "tigerplatform_celery_tasks",
    "Celery tasks finished, by queue, task and final state (success, failure, retry, ...).",
    ["queue", "task", "state"],
)
TASK_DURATION = Histogram(
    "tigerplatform_celery_task_duration_seconds",
    "Run time of Celery tasks by queue and final state.",
    ["queue", "state"],
    buckets=DURATION_BUCKETS,
)
TASKS_RUNNING = Gauge(
    "tigerplatform_celery_tasks_running", "Celery tasks running now, by queue.", ["queue"], multiprocess_mode="livesum"
)

# task id -> (queue, start); a task's prerun and postrun run in the same process.
_started: dict[str, tuple[str, float]] = {}


def _on_prerun(*, task_id: str, task: Any, **_: Any) -> None:
    queue = queue_for_task(task.name)
    _started[task_id] = (queue, time.monotonic())
    TASKS_RUNNING.labels(queue=queue).inc()


def _on_postrun(*, task_id: str, task: Any, state: str | None = None, **_: Any) -> None:
    started = _started.pop(task_id, None)
    if started is None:
        return
    queue, start = started
    # No state: the task raised out of the tracer (an in-process task whose error propagates to its caller).
    outcome = (state or "FAILURE").lower()
    TASKS_RUNNING.labels(queue=queue).dec()
    TASKS.labels(queue=queue, task=task.name, state=outcome).inc()
    TASK_DURATION.labels(queue=queue, state=outcome).observe(time.monotonic() - start)


def connect() -> None:
    """Idempotent (dispatch_uid): safe however often the app registry becomes ready."""
    task_prerun.connect(_on_prerun, weak=False, dispatch_uid="metrics.task_prerun")
    task_postrun.connect(_on_postrun, weak=False, dispatch_uid="metrics.task_postrun")
