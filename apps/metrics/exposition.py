"""The text Prometheus scrapes: this process's metrics, or, in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``),
those of every process on the host that writes there (gunicorn workers, Celery workers and their engines)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from apps.metrics.collectors import ProgressCollector


class _ThisProcess(Collector):
    """The default registry, as one collector of a per-scrape registry."""

    def collect(self) -> Iterable:
        return REGISTRY.collect()


def host_registry() -> CollectorRegistry:
    """The metrics of this host's processes: every process's files in multiprocess mode, else this process."""
    registry = CollectorRegistry(auto_describe=False)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ThisProcess())
    return registry


def render(*, accept: str) -> tuple[bytes, str]:
    """(body, content type) of a scrape of the web: the host's metrics plus progress read from the database."""
    registry = host_registry()
    registry.register(ProgressCollector())
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
