"""Send a Celery task after the current transaction commits.

With a broker the task goes to its queue. In embedded mode (no broker) it runs in this process on a background
thread, one at a time per queue, so a long job (training, ingestion) never holds the HTTP request that
started it; tasks are status-guarded, so running them here or on a worker is the same.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from celery import Task
from django.db import connections, transaction

from tigerplatform.celery import app as celery_app
from tigerplatform.celery import queue_for_task

logger = logging.getLogger(__name__)
_executors: dict[str, ThreadPoolExecutor] = {}
_lock = threading.Lock()
_pending: set[Future[Any]] = set()


def _executor(queue: str) -> ThreadPoolExecutor:
    with _lock:
        if queue not in _executors:
            _executors[queue] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"embedded-{queue}")
        return _executors[queue]


def _run_embedded(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        result = task.apply(args=args, kwargs=kwargs)
        if result.failed():
            logger.error("embedded task %s failed: %r", task.name, result.result)
    finally:
        connections.close_all()


def enqueue(task: Task, *args: Any, **kwargs: Any) -> None:
    def send() -> None:
        if celery_app.conf.task_always_eager:
            future = _executor(queue_for_task(task.name)).submit(_run_embedded, task, args, kwargs)
            _pending.add(future)
            future.add_done_callback(_pending.discard)
        else:
            task.apply_async(args=args, kwargs=kwargs)

    transaction.on_commit(send)


def wait_for_embedded_tasks(timeout_s: float = 600) -> None:
    """Block until no background task is left, including the ones those tasks started (tests, commands)."""
    deadline = time.monotonic() + timeout_s
    while _pending:
        for future in list(_pending):
            future.result(timeout=max(0.0, deadline - time.monotonic()))
