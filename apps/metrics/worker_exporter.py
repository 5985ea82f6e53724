"""A Celery worker on a host without the web serves its own metrics on ``METRICS_PORT`` (plain HTTP, for the
private network Prometheus scrapes from; no token). With ``PROMETHEUS_MULTIPROC_DIR`` set it serves every process
of the host that writes there, so a prefork worker's children are included."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import worker_process_shutdown, worker_ready
from django.conf import settings
from prometheus_client import start_http_server
from prometheus_client.multiprocess import mark_process_dead

from apps.metrics.exposition import host_registry

logger = logging.getLogger(__name__)


# Binds every interface: Prometheus scrapes it from another host (METRICS_PORT opts in).
def start_exporter(*, port: int, addr: str = "0.0.0.0") -> Any:  # noqa: S104
    """Serve the host's metrics on ``port``; returns (server, thread)."""
    served = start_http_server(port, addr=addr, registry=host_registry())
    logger.info("metrics: serving the worker's metrics on port %s", port)
    return served


# (server, thread) of this process's exporter, once started.
exporter: tuple[Any, Any] | None = None


def _on_worker_ready(**_: Any) -> None:
    global exporter
    if settings.METRICS_PORT and exporter is None:
        exporter = start_exporter(port=settings.METRICS_PORT)


def _on_process_shutdown(**_: Any) -> None:
    # A dead child's live gauges (running tasks, engine queues) must stop counting.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        mark_process_dead(os.getpid())


def connect() -> None:
    worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid="metrics.worker_ready")
    worker_process_shutdown.connect(_on_process_shutdown, weak=False, dispatch_uid="metrics.worker_process_shutdown")
