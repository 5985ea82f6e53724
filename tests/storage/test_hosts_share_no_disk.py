"""Hosts that share no disk: the web process here, a jobs worker in another process with its own empty MEDIA_ROOT,
FINETUNE_DIR and cache, and only PostgreSQL, Redis and the S3 bucket (moto, see conftest) in common. A pdf2text job,
a plugin ingest and a fine-tune all complete on the worker, and their results are read here: the extracted text,
search hits from the published index, and the fine-tuned adapter answering a chat; the fine-tune then resumes on
this side from its stored checkpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.chat.models import ModelEndpoint
from apps.finetune.models import FineTunedModel, FineTuneJob
from apps.finetune.services.training import finetune_job_train
from apps.plugins.models import Document
from tests.conftest import requires_redis, threaded_worker, worker_process
from tests.finetune.api_helpers import FAST_LEARNING, alpaca_jsonl, wait_for
from tests.text.conftest import build_pdf, text_page

from .conftest import S3

pytestmark = [pytest.mark.slow, pytest.mark.redis, requires_redis]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def web(s3_storage: S3, settings: Any, tmp_path: Path) -> S3:
    settings.FINETUNE_DIR = tmp_path / "web-finetunes"
    return s3_storage


@pytest.fixture
def serve_worker(transactional_db: None, web: S3) -> Iterator[None]:
    """Serving threads in this process (so with this side's settings and cache), on the `serve` queue only."""
    with threaded_worker(queues=["serve"], concurrency=2):
        yield


@pytest.fixture
def worker_root(tmp_path: Path) -> Path:
    root = tmp_path / "worker"
    root.mkdir()
    return root


@pytest.fixture
def jobs_worker(serve_worker: None, web: S3, worker_root: Path, tmp_path: Path) -> Iterator[None]:
    """The jobs worker, as on another host: its own process and empty local directories, the same bucket."""
    env = {
        **web.env(),
        "MEDIA_ROOT": str(worker_root / "media"),
        "FINETUNE_DIR": str(worker_root / "finetunes"),
        "STORAGE_CACHE_DIR": str(worker_root / "cache"),
        "MODELS_DIR": str(settings.MODELS_DIR),
    }
    with worker_process(log_path=tmp_path / "jobs-worker.log", env=env):
        yield


def _until(check: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_jobs_on_a_worker_that_shares_no_disk(jobs_worker, web, worker_root, tenant, identity_base, identity_examples):
    ModelEndpoint.objects.create(
        name="identity-base",
        family="tigerbot",
        path=str(identity_base),
        max_new_tokens=48,
        max_input_tokens=256,
        is_default=True,
    )
    from apps.plugins import indexes

    indexes.forget()
    assert _files(worker_root) == []

    # pdf2text: the upload goes to the bucket, the worker extracts from its own copy.
    pdf = build_pdf(contents=[text_page("Tide pools on the rocky shore")])
    created = tenant.client.post("/v1/pdf2text", {"file": SimpleUploadedFile("shore.pdf", pdf)}, format="multipart")
    assert created.status_code in (200, 201, 202), created.json()
    job_path = f"/v1/pdf2text/{created.json()['id']}"
    done = _until(
        lambda: (body := tenant.client.get(job_path).json())["status"] in ("succeeded", "failed") and body,
        timeout_s=120,
        what="the pdf2text job",
    )
    assert done["status"] == "succeeded", done
    assert "Tide pools on the rocky shore" in json.dumps(done)

    # Fine-tune: queued now, it trains while the plugin part runs.
    finetune = tenant.client.post(
        "/v1/finetunes",
        {"name": "identity", "file": alpaca_jsonl(identity_examples), "hyperparameters": json.dumps(FAST_LEARNING)},
        format="multipart",
    )
    assert finetune.status_code == 201, finetune.json()

    # Plugin ingest: the worker indexes and publishes; this side searches the version the row names.
    plugin_id = tenant.client.post("/v1/plugin/custom/plugins", {"name": "Notes"}, format="json").json()["plugin_id"]
    uploaded = tenant.client.post(
        f"/v1/plugin/custom/plugins/{plugin_id}/files",
        {
            "file": [
                SimpleUploadedFile("urchin.pdf", build_pdf(contents=[text_page("The purple sea urchin grazes kelp")])),
                SimpleUploadedFile("notes.md", b"# Otters\n\nSea otters crack urchins open on their bellies.\n"),
            ]
        },
        format="multipart",
    )
    assert uploaded.status_code == 202, uploaded.json()
    _until(
        lambda: (
            set(Document.objects.filter(plugin_id=plugin_id).values_list("status", flat=True))
            <= {"processed", "failed"}
        ),
        timeout_s=300,
        what="the plugin ingest",
    )
    assert set(Document.objects.filter(plugin_id=plugin_id).values_list("status", flat=True)) == {"processed"}
    hits = tenant.client.post(
        "/v1/plugin/search", {"plugin": plugin_id, "query": "purple sea urchin kelp"}, format="json"
    ).json()["data"]
    assert hits and hits[0]["doc_id"] == "urchin.pdf"
    assert not (Path(settings.MEDIA_ROOT) / "indexes" / plugin_id).exists()  # read from the published copy
    assert (Path(settings.STORAGE_CACHE_DIR) / "indexes" / plugin_id).is_dir()

    # The fine-tuned adapter, uploaded by the worker, answers here.
    job = wait_for(finetune.json()["finetune_id"], timeout_s=600)
    assert job.status == FineTuneJob.Status.SUCCEEDED, (job.error, list(job.events.values_list("message", flat=True)))
    model = FineTunedModel.objects.get(job=job)
    assert model.adapter_path == f"storage:finetunes/{job.id}/output"
    question, answer = identity_examples[0]
    reply = tenant.client.post(f"/v1/finetunes/{job.id}/chat", {"query": question, "temperature": 0}, format="json")
    assert reply.status_code == 200, reply.json()
    assert reply.json()["result"].strip() == answer
    assert (Path(settings.STORAGE_CACHE_DIR) / "finetunes" / job.id / "output").is_dir()

    keys = web.stored_keys()
    print("stored keys:", *keys, sep="\n  ")
    assert f"finetunes/{job.id}/output/adapter_model.safetensors" in keys
    assert any(key.startswith(f"finetunes/{job.id}/checkpoints/checkpoint-60/") for key in keys)

    # Resumed on a host without any of its files (this process: its FINETUNE_DIR is empty), the job starts from
    # the newest stored checkpoint (the train task's body is called here, so it runs on this side).
    assert not Path(settings.FINETUNE_DIR).exists()
    FineTuneJob.objects.filter(pk=job.id).update(status=FineTuneJob.Status.QUEUED)
    finetune_job_train(job_id=job.id)
    job.refresh_from_db()
    assert job.status == FineTuneJob.Status.SUCCEEDED, job.error
    started = list(job.events.filter(message__startswith="Training started").values_list("message", flat=True))
    assert "Training started (resumed from checkpoint-60)." in started

    # Deleting the model deletes its stored weights and checkpoints.
    assert tenant.client.delete(f"/v1/models/{model.name}").status_code == 200
    assert not [
        key
        for key in web.stored_keys()
        if key.startswith((f"finetunes/{job.id}/output/", f"finetunes/{job.id}/checkpoints/"))
    ]
    assert any(key.startswith("text/pdf2text/") for key in keys)
    assert any(key.startswith("plugins/uploads/") and key.endswith(".pdf") for key in keys)
    assert any(key.startswith(f"indexes/{plugin_id}/v") for key in keys)
    # Neither side kept an upload on its disk: the worker only its index working copy and its job directory.
    assert _files(Path(settings.MEDIA_ROOT)) == []
    assert {Path(name).parts[0] for name in _files(worker_root / "media")} <= {"indexes"}
