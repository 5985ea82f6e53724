"""Ingest runs that a killed worker left running are queued again (a periodic check).

Ingest tasks are acknowledged late, but the broker redelivers an unacknowledged task only after its visibility
timeout (``CELERY_LONGEST_TASK_S`` plus an hour, two days by default): a worker killed mid-ingest would leave its run
``running`` and its documents ``processing`` that long. A run is re-queued when it is marked running while no
process holds its plugin's write lock, which every ingestion holds while it indexes; the task is status-guarded
and picks up only the documents not yet indexed, so a run that was merely about to take the lock is unharmed.
"""

from __future__ import annotations

from apps.core.dispatch import enqueue
from apps.plugins import indexes
from apps.plugins.models import IngestRun


def ingest_runs_resume() -> int:
    """Queue again the running ingest runs that no process is indexing; returns how many."""
    from apps.plugins.tasks import ingest_run_task

    running = IngestRun.objects.filter(status=IngestRun.Status.RUNNING).values_list("pk", "plugin_id")
    stale = [run_id for run_id, plugin_id in running if not indexes.file_lock_held(indexes.write_lock_path(plugin_id))]
    for run_id in stale:
        enqueue(ingest_run_task, run_id)
    return len(stale)
