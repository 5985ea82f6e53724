"""Plugin tasks (queue ``ingest``): thin, status-guarded wrappers around the services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.plugins import dense, recovery
from apps.plugins.models import Plugin
from apps.plugins.services import ingestion


@shared_task(name="plugins.ingest", acks_late=True, reject_on_worker_lost=True)
def ingest_run_task(run_id: str) -> None:
    ingestion.ingest_run_process(run_id=run_id)


@shared_task(name="plugins.reindex", acks_late=True, reject_on_worker_lost=True)
def reindex_task(plugin_id: str) -> None:
    plugin = Plugin.objects.filter(pk=plugin_id).first()
    if plugin is not None:
        ingestion.plugin_reindex(plugin=plugin)


@shared_task(name="plugins.dense_build", acks_late=True, reject_on_worker_lost=True)
def dense_build_task(plugin_id: str) -> None:
    dense.dense_build(plugin_id=plugin_id, slice_s=settings.PLUGINS_DENSE_SLICE_S)


@shared_task(name="plugins.maintenance.resume_dense_builds")
def resume_dense_builds_task() -> int:
    return dense.dense_builds_resume()


@shared_task(name="plugins.maintenance.resume_ingest_runs")
def resume_ingest_runs_task() -> int:
    return recovery.ingest_runs_resume()
