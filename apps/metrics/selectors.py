"""Read-only progress figures of long-running work, for the scrape-time collector."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet

from apps.finetune.models import FineTuneJob
from apps.plugins.models import Document, IngestRun, Plugin


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` for one running item (a fine-tuning job, an ingest run, a dense build)."""

    id: str
    label: str
    done: int
    total: int


def finetune_jobs_by_status() -> dict[str, int]:
    """Every status, zero included, so a series does not vanish when its last job moves on."""
    counts = _counts(FineTuneJob.objects.all())
    return {status: counts.get(status, 0) for status in FineTuneJob.Status.values}


def finetune_running_progress() -> list[Progress]:
    jobs = FineTuneJob.objects.filter(status=FineTuneJob.Status.RUNNING).values_list("id", "base_model", "progress")
    return [
        Progress(
            id=job_id,
            label=base_model,
            done=_int((progress or {}).get("step")),
            total=_int((progress or {}).get("total_steps")),
        )
        for job_id, base_model, progress in jobs
    ]


def plugin_documents_pending() -> dict[str, int]:
    """Documents waiting for or in ingestion (the status index keeps this cheap however many are processed)."""
    pending = (Document.Status.QUEUED, Document.Status.PROCESSING)
    counts = _counts(Document.objects.filter(status__in=pending))
    return {status: counts.get(status, 0) for status in pending}


def ingest_runs_unfinished() -> list[Progress]:
    runs = IngestRun.objects.filter(status__in=(IngestRun.Status.QUEUED, IngestRun.Status.RUNNING))
    rows = runs.values_list("id", "plugin_id", "done", "failed", "total")
    return [
        Progress(id=run_id, label=plugin_id, done=done + failed, total=total)
        for run_id, plugin_id, done, failed, total in rows
    ]


def dense_builds_unfinished() -> list[Progress]:
    plugins = Plugin.objects.filter(dense_status__in=(Plugin.DenseStatus.QUEUED, Plugin.DenseStatus.BUILDING))
    return [
        Progress(id=plugin_id, label=embedding_model, done=done, total=total)
        for plugin_id, embedding_model, done, total in plugins.values_list(
            "id", "embedding_model", "dense_done", "dense_total"
        )
    ]


def _counts(rows: QuerySet) -> dict[str, int]:
    return {row["status"]: row["n"] for row in rows.order_by().values("status").annotate(n=Count("id"))}


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0
