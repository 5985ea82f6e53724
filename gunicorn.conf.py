"""gunicorn reads this file from its working directory by default: `make run` (scripts/run.sh), the Dockerfile and
Compose all start it from the repository root."""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    # The embedded mode's periodic checks (no broker, so no `celery beat`): a beat thread in each web worker once the
    # application is loaded; with a broker this does nothing.
    from apps.core.embedded_beat import start_embedded_beat
    from tigerplatform.celery import app

    start_embedded_beat(app)
