"""Ingest runs that a killed worker left running are queued again (a periodic check).

Ingest tasks are acknowledged late, but the broker redelivers an unacknowledged task only after its visibility
timeout (``CELERY_LONGEST_TASK_S`` plus an hour, two days by default): a worker killed mid-ingest would leave its run
``running`` and its documents ``processing`` that long. A run is re-queued when it is marked running while no
process holds its plugin's write lock, which every ingestion holds while it indexes; the task is status-guarded
and picks up only the documents not yet indexed, so a run that was merely about to take the lock is unharmed.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from django.conf import settings

from apps.core.dispatch import enqueue
from apps.plugins.models import IngestRun


def _writing(plugin_id: str) -> bool:
    """Whether a process holds the plugin's index write lock (the file ``apps.plugins.indexes.write_lock`` locks)."""
    path = Path(settings.MEDIA_ROOT) / "indexes" / f"{plugin_id}.lock"
    if not path.exists():
        return False
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def ingest_runs_resume() -> int:
    """Queue again the running ingest runs that no process is indexing; returns how many."""
    from apps.plugins.tasks import ingest_run_task

    stale = [run_id for run_id, plugin_id in IngestRun.objects.filter(
        status=IngestRun.Status.RUNNING).values_list("pk", "plugin_id") if not _writing(plugin_id)]
    for run_id in stale:
        enqueue(ingest_run_task, run_id)
    return len(stale)
