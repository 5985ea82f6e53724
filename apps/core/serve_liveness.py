"""Whether a ``serve`` task can still be answered, so that its caller fails fast instead of waiting
``CHAT_TASK_TIMEOUT_S`` for a worker that is not there or has died.

- A worker that consumes ``serve`` keeps ``tp:serve:worker:<hostname>`` alive: a key with a short TTL that a thread
  refreshes (``ServeHeartbeat``, a worker bootstep, so it starts and stops with the worker, warm or cold).
- A ``serve`` task records, as it starts, which worker took it: ``tp:serve:claim:<task id>`` = hostname, a key with
  the same short TTL that a thread of the process running the task renews until it ends.
- The caller waits in slices (``wait_for``, or its own loop calling ``Watch.check``) and gives up with a 503 when
  nobody took the task within ``SERVE_CLAIM_TIMEOUT_S`` (a serve worker with a thread free takes a task at once:
  its engine does its own queueing): ``no_serving_worker`` when no worker is alive, ``model_overloaded`` when all
  the alive ones are busy; ``worker_lost`` when the worker that took it stopped beating; ``request_lost`` when that
  worker lives but the task's claim is gone with no answer come (a Redis restart lost the task or its result).

Only with a broker: embedded mode runs tasks in this process and touches none of these keys.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from functools import cache
from typing import Any, cast

import redis
from celery import bootsteps, signals
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings

from tigerplatform.celery import queue_for_task
from workers.errors import Unavailable

logger = logging.getLogger(__name__)

SERVE_QUEUE = "serve"
WORKER_KEY = "tp:serve:worker:{}"
CLAIM_KEY = "tp:serve:claim:{}"
# A worker is dead once its key is this old; it refreshes it three times as often, so a slow beat is no death.
WORKER_TTL_S = 10
BEAT_S = 3.0
# How long the caller blocks between two looks at the keys.
SLICE_S = 2.0
RETRY_AFTER_S = 10

# The node name of the serve worker this process belongs to (None elsewhere).
_worker_name: str | None = None
# The serve tasks this process runs now, whose claims a thread renews.
_running: set[str] = set()
_running_lock = threading.Lock()
_claim_refresher: threading.Thread | None = None


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


class _Beat:
    """The thread that keeps one worker's key alive."""

    def __init__(self, hostname: str) -> None:
        self.key = WORKER_KEY.format(hostname)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="serve-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._thread.join(timeout=BEAT_S)
        with contextlib.suppress(redis.RedisError):  # else it expires on its own
            _client().delete(self.key)

    def _run(self) -> None:
        failing = False
        while True:
            try:
                _client().set(self.key, "alive", ex=WORKER_TTL_S)
                failing = False
            except redis.RedisError as exc:  # Redis restarting: callers cannot read the key either
                if not failing:
                    logger.warning("serve heartbeat: cannot reach Redis: %s", exc)
                failing = True
            if self._stopped.wait(BEAT_S):
                return


class ServeHeartbeat(bootsteps.StartStopStep):
    """Worker bootstep: a worker that consumes ``serve`` announces itself while it runs (a cold shutdown stops
    it too, unlike the ``worker_shutdown`` signal; Celery's test worker runs it, unlike ``worker_ready``)."""

    label = "serve heartbeat"
    _beat: _Beat | None = None

    def include_if(self, parent: Any) -> bool:
        return SERVE_QUEUE in parent.app.amqp.queues.consume_from

    def create(self, parent: Any) -> None:
        global _worker_name
        # Here, before the pool starts: a prefork child inherits it. (A task's ``request.hostname`` is the node
        # name only where Celery's worker optimisations are set up, which its test worker skips.)
        _worker_name = parent.hostname
        self._beat = _Beat(parent.hostname)

    def start(self, parent: Any) -> None:
        if self._beat is not None:
            self._beat.start()

    def stop(self, parent: Any) -> None:
        global _worker_name
        _worker_name = None
        if self._beat is not None:
            self._beat.stop()

    def terminate(self, parent: Any) -> None:
        self.stop(parent)


@signals.task_prerun.connect(weak=False, dispatch_uid="serve_liveness.record_claim")
def _record_claim(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if _worker_name is None or task_id is None or task is None or task.request.is_eager:
        return  # not on a serve worker
    if queue_for_task(task.name) != SERVE_QUEUE:
        return
    global _claim_refresher
    with _running_lock:
        _running.add(task_id)
        if _claim_refresher is None:  # once per process that runs tasks (the worker, or each prefork child)
            _claim_refresher = threading.Thread(target=_refresh_claims, name="serve-claims", daemon=True)
            _claim_refresher.start()
    _set_claims([task_id])


@signals.task_postrun.connect(weak=False, dispatch_uid="serve_liveness.drop_claim")
def _drop_claim(task_id: str | None = None, **_: Any) -> None:
    # Its result is stored by now; the claim, no longer renewed, expires within WORKER_TTL_S.
    with _running_lock:
        _running.discard(task_id or "")


def _refresh_claims() -> None:
    while True:
        time.sleep(BEAT_S)
        with _running_lock:
            running = list(_running)
        if running and _worker_name is not None:
            _set_claims(running)


def _set_claims(task_ids: list[str]) -> None:
    """Each running task's claim lives as long as a worker's key: a claim that is gone means that no worker runs
    the task any more (it ended, or Redis restarted and it did not survive)."""
    try:
        pipe = _client().pipeline()
        for task_id in task_ids:
            pipe.set(CLAIM_KEY.format(task_id), _worker_name or "", ex=WORKER_TTL_S)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("serve tasks %s: cannot record their claims: %s", task_ids, exc)


def live_workers() -> list[str]:
    """The hostnames of the serve workers alive now."""
    prefix = WORKER_KEY.format("")
    return sorted(key.removeprefix(prefix) for key in _client().scan_iter(match=f"{prefix}*", count=100))


class Watch:
    """The caller's side of one sent ``serve`` task; create it when the task is sent."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self._sent = time.monotonic()
        self._worker: str | None = None
        self._missing_since: float | None = None

    def check(self) -> None:
        """Raises ``Unavailable`` when waiting longer is pointless."""
        client = _client()
        if self._worker is None:
            self._worker = cast(str | None, client.get(CLAIM_KEY.format(self.task_id)))  # decode_responses
            if self._worker is None:
                if time.monotonic() - self._sent >= settings.SERVE_CLAIM_TIMEOUT_S:
                    raise self._unclaimed()
                return
        pipe = client.pipeline()
        pipe.exists(WORKER_KEY.format(self._worker))
        pipe.exists(CLAIM_KEY.format(self.task_id))
        worker_alive, still_claimed = pipe.execute()
        if worker_alive and still_claimed:
            self._missing_since = None
        elif self._missing_since is None:
            # One look is not enough: a Redis that restarted empty lacks every key until the worker's next beat.
            self._missing_since = time.monotonic()
        elif time.monotonic() - self._missing_since >= BEAT_S:
            if not worker_alive:
                raise Unavailable(
                    f"The serving worker {self._worker} stopped while answering; retry.",
                    code="worker_lost",
                    retry_after_s=RETRY_AFTER_S,
                )
            # The worker lives but runs the task no more, and no answer came: it went with a Redis restart.
            raise Unavailable(
                "The answer was lost (the broker restarted while it was on its way); retry.",
                code="request_lost",
                retry_after_s=RETRY_AFTER_S,
            )

    def _unclaimed(self) -> Unavailable:
        alive = live_workers()
        if alive:
            # Every thread of the live workers is busy (or the request was lost with a Redis restart): the same
            # answer as a full engine, which clients and the batch runner already retry.
            return Unavailable(
                f"No serving worker took the request within {settings.SERVE_CLAIM_TIMEOUT_S:g} s: the "
                f"{len(alive)} alive are busy; retry.",
                code="model_overloaded",
                retry_after_s=RETRY_AFTER_S,
            )
        return Unavailable(
            f"No serving worker is running to take the request (waited {settings.SERVE_CLAIM_TIMEOUT_S:g} s); retry.",
            code="no_serving_worker",
            retry_after_s=RETRY_AFTER_S,
        )


def wait_for(async_result: Any, *, watch: Watch, timeout_s: float) -> Any:
    """``async_result.get()``, checking ``watch`` every ``SLICE_S``; Celery's ``TimeoutError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return async_result.get(timeout=max(0.01, min(SLICE_S, deadline - time.monotonic())), propagate=True)
        except CeleryTimeoutError:
            if time.monotonic() >= deadline:
                raise
            watch.check()
