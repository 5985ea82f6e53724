"""The periodic checks of ``CELERY_BEAT_SCHEDULE`` (jobs whose worker died, stalled batches and builds) in the
embedded mode, where no ``celery beat`` runs: Celery's own beat service on a thread of the web process. Without a
broker every task it sends runs eagerly, on that thread."""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery
from celery.beat import EmbeddedService, Scheduler
from celery.signals import task_postrun
from django.db import close_old_connections

BEAT_THREAD_NAME = "Beat"  # the name celery.beat gives its embedded thread


def _release_connections(**_: Any) -> None:
    # The beat thread lives as long as the process: like a worker, it hands back its database connection after each
    # task, so a restarted database or CONN_MAX_AGE never leaves it holding a dead one.
    if threading.current_thread().name == BEAT_THREAD_NAME:
        close_old_connections()


def start_embedded_beat(app: Celery) -> Any | None:
    """Start beat on a daemon thread when tasks run in-process (no broker) and there is a schedule; the in-memory
    scheduler keeps no file: each interval counts from the start of the process."""
    if not app.conf.task_always_eager or not app.conf.beat_schedule:
        return None
    # Beat sends an entry it finds no task object for to the broker, where nothing would read it: register every
    # app's tasks first, as a worker does when it starts (a web process otherwise imports them on its first request).
    app.loader.import_default_modules()
    task_postrun.connect(_release_connections, weak=False, dispatch_uid="embedded-beat-connections")
    service: Any = EmbeddedService(app, thread=True, scheduler_cls=Scheduler)  # a daemon thread (thread=True)
    service.start()
    return service
