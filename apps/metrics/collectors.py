"""Progress of fine-tuning and ingestion, read from the database when Prometheus scrapes (so every web process
reports the same figures, whichever worker did the work)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily, Metric

from apps.metrics import selectors

logger = logging.getLogger(__name__)


class ProgressCollector:
    """A custom collector: nothing is stored between scrapes, each one runs a few indexed queries."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "tigerplatform_progress_collector_up", "1 when the progress figures below could be read from the database."
        )
        try:
            families = list(self._families())
        except DatabaseError:
            logger.warning("metrics: progress figures unavailable", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        yield _by_status(
            selectors.finetune_jobs_by_status(), "tigerplatform_finetune_jobs", "Fine-tuning jobs by status."
        )
        yield from _progress(
            selectors.finetune_running_progress(),
            "tigerplatform_finetune_job_steps",
            "training steps of a running fine-tuning job",
            ("job", "base_model"),
        )

        yield _by_status(
            selectors.plugin_documents_pending(),
            "tigerplatform_plugin_documents_pending",
            "Plugin documents waiting for (queued) or in (processing) ingestion.",
        )
        yield from _progress(
            selectors.ingest_runs_unfinished(),
            "tigerplatform_ingest_run_documents",
            "documents of an unfinished ingest run (done counts failed ones)",
            ("run", "plugin"),
        )
        yield from _progress(
            selectors.dense_builds_unfinished(),
            "tigerplatform_dense_build_chunks",
            "chunks of a plugin's unfinished dense (embedding) build",
            ("plugin", "embedding_model"),
        )


def _by_status(counts: dict[str, int], name: str, documentation: str) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status, count in counts.items():
        family.add_metric([status], count)
    return family


def _progress(items: list[selectors.Progress], prefix: str, what: str, labels: tuple[str, str]) -> Iterator[Metric]:
    done = GaugeMetricFamily(f"{prefix}_done", f"Done {what}.", labels=list(labels))
    total = GaugeMetricFamily(f"{prefix}_planned", f"All {what}.", labels=list(labels))
    for item in items:
        done.add_metric([item.id, item.label], item.done)
        total.add_metric([item.id, item.label], item.total)
    yield done
    yield total
