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
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.db import connections, transaction

from apps.core import serve_liveness
from apps.core.request_id import bind_request_id, get_request_id
from tigerplatform.celery import app as celery_app
from tigerplatform.celery import queue_for_task
from workers.errors import Unavailable, UpstreamTimeout

logger = logging.getLogger(__name__)
_executors: dict[str, ThreadPoolExecutor] = {}
_lock = threading.Lock()
_pending: set[Future[Any]] = set()


def _executor(queue: str) -> ThreadPoolExecutor:
    with _lock:
        if queue not in _executors:
            _executors[queue] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"embedded-{queue}")
        return _executors[queue]


def _run_embedded(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any], request_id: str | None) -> None:
    try:
        with bind_request_id(request_id):
            result = task.apply(args=args, kwargs=kwargs)
            if result.failed():
                logger.error("embedded task %s failed: %r", task.name, result.result)
    finally:
        connections.close_all()


def enqueue(task: Task, *args: Any, **kwargs: Any) -> None:
    request_id = get_request_id()  # the task logs under the id of the request (or task) that sent it

    def send() -> None:
        if celery_app.conf.task_always_eager:
            future = _executor(queue_for_task(task.name)).submit(_run_embedded, task, args, kwargs, request_id)
            _pending.add(future)
            future.add_done_callback(_pending.discard)
        else:
            with bind_request_id(request_id):
                task.apply_async(args=args, kwargs=kwargs)

    transaction.on_commit(send)


def wait_for_embedded_tasks(timeout_s: float = 600) -> None:
    """Block until no background task is left, including the ones those tasks started (tests, commands)."""
    deadline = time.monotonic() + timeout_s
    while _pending:
        for future in list(_pending):
            future.result(timeout=max(0.0, deadline - time.monotonic()))


def serve_call(task: Task, *args: Any) -> Any:
    """The answer of a ``serve``-queue task that loads a model (embeddings, rerank): computed in this process in
    embedded mode, else by a serving worker (which keeps the model loaded) within ``CHAT_TASK_TIMEOUT_S``; a 503
    sooner when no worker takes it or the one that took it dies (``serve_liveness``)."""
    if celery_app.conf.task_always_eager:
        return task.run(*args)
    result = task.delay(*args)
    try:
        return serve_liveness.wait_for(
            result, watch=serve_liveness.Watch(result.id), timeout_s=settings.CHAT_TASK_TIMEOUT_S
        )
    except CeleryTimeoutError:
        result.revoke()
        raise UpstreamTimeout("No serving worker answered.", code="worker_timeout") from None
    except Unavailable:
        result.revoke()  # a worker that turns up later need not compute it for nobody
        raise
    finally:
        result.forget()
