"""Log lines: JSON by default (timestamp, level, logger, message, request_id), plain with LOG_FORMAT=plain; job
state changes logged once each; Sentry only when SENTRY_DSN is set, its events tagged with the request id."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from apps.finetune.models import FineTuneJob

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = """
import logging, sys
from django.conf import settings
from django.utils.log import configure_logging
configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)  # what django.setup() does first
from apps.core.request_id import bind_request_id
with bind_request_id("sub-1"):
    logging.getLogger("tigerplatform.try").warning("hello %s", "there")
    {extra}
print("sentry loaded:", "sentry_sdk" in sys.modules)
"""


def _run(extra: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("SENTRY_DSN", "LOG_FORMAT")}
    environment.update(DJANGO_SETTINGS_MODULE="tigerplatform.settings", PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-c", SNIPPET.format(extra=extra)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_json_lines_by_default_without_sentry():
    done = _run()
    [line] = [json.loads(line) for line in done.stderr.splitlines() if "tigerplatform.try" in line]
    assert set(line) == {"timestamp", "level", "logger", "message", "request_id"}
    assert (line["level"], line["logger"], line["message"], line["request_id"]) == (
        "WARNING",
        "tigerplatform.try",
        "hello there",
        "sub-1",
    )
    assert "sentry loaded: False" in done.stdout


def test_plain_lines_for_people():
    done = _run(LOG_FORMAT="plain")
    [line] = [line for line in done.stderr.splitlines() if "tigerplatform.try" in line]
    assert line.endswith(" WARNING tigerplatform.try [sub-1] hello there")


@pytest.fixture
def sentry_server() -> Iterator[tuple[str, list[bytes]]]:
    """A stand-in Sentry: records each envelope posted to it."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            encoding = self.headers.get("Content-Encoding", "")
            received.append(
                gzip.decompress(body)
                if encoding == "gzip"
                else zlib.decompress(body)
                if encoding == "deflate"
                else body
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://public@127.0.0.1:{server.server_port}/1", received
    server.shutdown()


def test_sentry_events_carry_the_request_id(sentry_server):
    dsn, received = sentry_server
    done = _run("import sentry_sdk; sentry_sdk.capture_message('boom'); sentry_sdk.flush(5)", SENTRY_DSN=dsn)
    assert "sentry loaded: True" in done.stdout
    events = [
        json.loads(item)
        for envelope in received
        for item in envelope.splitlines()
        if item.startswith(b"{") and b'"boom"' in item
    ]
    assert events and events[0]["tags"]["request_id"] == "sub-1"


def test_a_job_state_change_by_save_is_logged_once(db, tenant, json_logs):
    from apps.finetune.models import TrainingFile

    training = TrainingFile.objects.create(
        owner=tenant.user, filename="t.jsonl", bytes=1, format="chat", total=1, valid_count=1
    )
    job = FineTuneJob.objects.create(owner=tenant.user, base_model="m", training_file=training)
    job.status = FineTuneJob.Status.CANCELLED
    job.save(update_fields=["status"])
    job.save()
    FineTuneJob.objects.filter(pk=job.pk).update(status=FineTuneJob.Status.CANCELLED)  # no change: no line
    states = [
        (line["job_kind"], line["old_status"], line["new_status"])
        for line in json_logs
        if line.get("event") == "job_state"
    ]
    assert states == [
        ("finetune.finetunejob", None, "validating_files"),
        ("finetune.finetunejob", "validating_files", "cancelled"),
    ]
