"""An ingest run that a killed worker left running is queued again by the periodic check, unless a process is
still indexing its plugin, and then finishes: every document indexed once, searchable, the counts adding up."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from apps.plugins import recovery, tasks
from apps.plugins.models import Document, IngestRun, Plugin
from apps.plugins.services import ingestion

BASE = "/v1/plugin/custom/plugins"


class WorkerKilled(Exception):
    pass


def _killed_after_first(done: int, total: int) -> None:
    if done == 1:
        raise WorkerKilled


def test_a_run_left_running_is_queued_again_and_finishes(tenant, plugin_indexes, monkeypatch, settings):
    settings.PLUGINS_INGEST_BATCH = 1
    plugin_id = tenant.client.post(BASE, {"name": "Notes"}, format="json").json()["plugin_id"]
    plugin = Plugin.objects.get(pk=plugin_id)
    run = IngestRun.objects.create(plugin=plugin, total=3)
    for name in ("a.md", "b.md", "c.md"):
        Document.objects.create(
            plugin=plugin, run=run, external_id=name, title=name, text=f"The purple sea urchin of {name} grazes kelp."
        )
    with pytest.raises(WorkerKilled):  # the worker dies after indexing the first document
        ingestion.ingest_run_process(run_id=run.pk, progress=_killed_after_first, dense_build_in_background=False)
    run.refresh_from_db()
    assert (run.status, run.done) == ("running", 1)
    queued: list[str] = []
    monkeypatch.setattr(recovery, "enqueue", lambda task, run_id: queued.append(run_id))

    lock_path = Path(settings.MEDIA_ROOT) / "indexes" / f"{plugin_id}.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a process is indexing the plugin: its run is not stale
        assert tasks.resume_ingest_runs_task() == 0
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert tasks.resume_ingest_runs_task() == 1 and queued == [run.pk]

    ingestion.ingest_run_process(run_id=run.pk, dense_build_in_background=False)  # the queued task
    run.refresh_from_db()
    assert (run.status, run.done, run.failed) == ("succeeded", 3, 0)
    assert set(Document.objects.filter(run=run).values_list("status", flat=True)) == {"processed"}
    assert Plugin.objects.get(pk=plugin_id).status == "ready"
    hits = tenant.client.post(
        "/v1/plugin/search", {"plugin": plugin_id, "query": "urchin kelp", "top_k": 5}, format="json"
    ).json()["data"]
    assert sorted(hit["doc_id"] for hit in hits) == ["a.md", "b.md", "c.md"]
    assert tasks.resume_ingest_runs_task() == 0
