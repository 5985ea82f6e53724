"""Celery task metrics (in-process tasks and a real worker) and the progress read from the database at scrape
time: fine-tuning jobs and their steps, ingestion and dense builds."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from apps.core.tasks import ping
from apps.finetune.models import FineTuneJob, TrainingFile
from apps.plugins.models import Document, IngestRun, Plugin
from tigerplatform.celery import app


@app.task(name="tests.metrics.boom")
def boom() -> None:
    raise RuntimeError("boom")


def test_an_in_process_task_moves_the_celery_counters(db, scrape):
    succeeded = {"queue": "default", "task": "core.ping", "state": "success"}
    before = scrape("tigerplatform_celery_tasks_total", **succeeded)
    durations = scrape("tigerplatform_celery_task_duration_seconds_count", queue="default", state="success")
    assert ping.delay("x").get() == "pong:x"
    assert scrape("tigerplatform_celery_tasks_total", **succeeded) == before + 1
    assert scrape("tigerplatform_celery_task_duration_seconds_count", queue="default", state="success") == durations + 1
    assert scrape("tigerplatform_celery_tasks_running", queue="default") == 0


def test_a_failing_task_is_counted_as_a_failure(db, scrape):
    failed = {"queue": "default", "task": "tests.metrics.boom", "state": "failure"}
    before = scrape("tigerplatform_celery_tasks_total", **failed)
    with pytest.raises(RuntimeError):
        boom.delay()
    assert scrape("tigerplatform_celery_tasks_total", **failed) == before + 1


def test_a_task_run_by_a_real_worker_is_counted(celery_worker, scrape):
    succeeded = {"queue": "default", "task": "core.ping", "state": "success"}
    before = scrape("tigerplatform_celery_tasks_total", **succeeded)
    assert ping.delay("w").get(timeout=30) == "pong:w"
    assert scrape("tigerplatform_celery_tasks_total", **succeeded) == before + 1


def test_the_progress_collector_reports_fine_tuning_and_ingestion(tenant, scrape):
    training = TrainingFile.objects.create(
        owner=tenant.user,
        filename="data.jsonl",
        bytes=2,
        format="chat",
        total=1,
        valid_count=1,
        file=ContentFile(b"{}", name="data.jsonl"),
    )
    job = FineTuneJob.objects.create(
        owner=tenant.user,
        base_model="tiny",
        training_file=training,
        status=FineTuneJob.Status.RUNNING,
        progress={"step": 30, "total_steps": 120, "loss": 1.5},
    )
    FineTuneJob.objects.create(
        owner=tenant.user, base_model="tiny", training_file=training, status=FineTuneJob.Status.QUEUED
    )
    plugin = Plugin.objects.create(
        owner=tenant.user,
        slug="docs",
        name="Docs",
        embedding_model="e5",
        dense_status=Plugin.DenseStatus.BUILDING,
        dense_done=40,
        dense_total=100,
    )
    run = IngestRun.objects.create(plugin=plugin, status=IngestRun.Status.RUNNING, total=5, done=2, failed=1)
    for number, status in enumerate(("queued", "queued", "processing", "processed")):
        Document.objects.create(plugin=plugin, run=run, external_id=f"doc-{number}", status=status)

    assert scrape("tigerplatform_progress_collector_up") == 1
    assert scrape("tigerplatform_finetune_jobs", status="running") == 1
    assert scrape("tigerplatform_finetune_jobs", status="queued") == 1
    assert scrape("tigerplatform_finetune_jobs", status="failed") == 0
    running = {"job": job.id, "base_model": "tiny"}
    assert scrape("tigerplatform_finetune_job_steps_done", **running) == 30
    assert scrape("tigerplatform_finetune_job_steps_planned", **running) == 120
    assert scrape("tigerplatform_plugin_documents_pending", status="queued") == 2
    assert scrape("tigerplatform_plugin_documents_pending", status="processing") == 1
    assert scrape("tigerplatform_ingest_run_documents_done", run=run.id, plugin=plugin.id) == 3
    assert scrape("tigerplatform_ingest_run_documents_planned", run=run.id, plugin=plugin.id) == 5
    dense = {"plugin": plugin.id, "embedding_model": "e5"}
    assert scrape("tigerplatform_dense_build_chunks_done", **dense) == 40
    assert scrape("tigerplatform_dense_build_chunks_planned", **dense) == 100

    job.status = FineTuneJob.Status.SUCCEEDED
    job.save(update_fields=["status"])
    assert scrape("tigerplatform_finetune_jobs", status="running") == 0
    assert scrape("tigerplatform_finetune_job_steps_done", **running) == 0  # the series is gone
