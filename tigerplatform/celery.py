"""Celery application: queues ``default``, ``ingest``, ``serve``, ``train`` and ``batch``.

Routing (``CELERY_TASK_ROUTES``) and per-queue time limits (``CELERY_QUEUE_TIME_LIMITS``) live in settings.
"""

from __future__ import annotations

import os
from fnmatch import fnmatch
from typing import Any

from celery import Celery
from kombu import Queue

from apps.core import task_context  # noqa: F401  (request ids into tasks; settings' logging in workers)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tigerplatform.settings")

app = Celery("tigerplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in ("default", "ingest", "serve", "train", "batch")]


class QueueTimeLimits:
    """Gives each task the soft/hard time limit of the queue its name routes to, unless it sets its own."""

    def annotate(self, task: Any) -> dict[str, int] | None:
        from django.conf import settings

        queue = queue_for_task(task.name)
        limits: tuple[int, int] | None = settings.CELERY_QUEUE_TIME_LIMITS.get(queue)
        if limits is None:
            return None
        soft, hard = limits
        return {"soft_time_limit": task.soft_time_limit or soft, "time_limit": task.time_limit or hard}


def queue_for_task(name: str) -> str:
    from django.conf import settings

    for pattern, route in settings.CELERY_TASK_ROUTES.items():
        if fnmatch(name, pattern):
            return route["queue"]
    return settings.CELERY_TASK_DEFAULT_QUEUE


app.conf.task_annotations = [QueueTimeLimits()]
# A serve worker's liveness key and its tasks' claims (by name: the module imports this one).
app.steps["worker"].add("apps.core.serve_liveness:ServeHeartbeat")
app.autodiscover_tasks()
