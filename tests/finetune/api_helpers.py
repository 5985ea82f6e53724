"""Helpers for the fine-tuning API tests: a registered base model, datasets, polling a job to its end."""

from __future__ import annotations

import io
import json
import time
from typing import Any

from django.utils import timezone

from apps.finetune.models import FineTuneJob, TrainingFile

# Settings under which the tiny identity base learns its eight answers in a few dozen steps on a CPU.
FAST_LEARNING = {
    "n_epochs": 1000,
    "max_steps": 60,
    "learning_rate": 5e-3,
    "lr_scheduler": "constant_with_warmup",
    "warmup_ratio": 0.0,
    "batch_size": 8,
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.0,
    "eval": False,
    "validation_split": 0,
    "save_steps": 40,
    "logging_steps": 5,
}


def alpaca_jsonl(pairs: list[tuple[str, str]], name: str = "data.jsonl") -> io.BytesIO:
    lines = [json.dumps({"instruction": q, "input": "", "output": a}, ensure_ascii=False) for q, a in pairs]
    upload = io.BytesIO("\n".join(lines).encode())
    upload.name = name
    return upload


def wait_for(
    job_id: str,
    *,
    statuses: tuple[str, ...] = tuple(FineTuneJob.TERMINAL),
    timeout_s: float = 600,
    predicate: Any = None,
) -> FineTuneJob:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = FineTuneJob.objects.get(pk=job_id)
        if job.status in statuses and (predicate is None or predicate(job)):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {FineTuneJob.objects.get(pk=job_id).status} after {timeout_s} s")


def wait_for_training_stopped(job_id: str, *, timeout_s: float = 600) -> FineTuneJob:
    """A cancelled job once its worker has stopped the training process (the cancel answers before that), and
    the task that ran it has ended when it ran in this process."""
    from apps.core.dispatch import wait_for_embedded_tasks

    job = wait_for(
        job_id,
        statuses=(FineTuneJob.Status.CANCELLED,),
        timeout_s=timeout_s,
        predicate=lambda job: job.events.filter(message__startswith="Training process stopped").exists(),
    )
    wait_for_embedded_tasks(timeout_s=60)
    return job


def running_job(owner: Any, **fields: Any) -> FineTuneJob:
    """A job as a worker that claimed it leaves it (no worker trains it here); ``fields`` override its columns."""
    training_file = TrainingFile.objects.create(
        owner=owner, filename="x.jsonl", bytes=1, format="alpaca", total=1, valid_count=1
    )
    now = timezone.now()
    columns = {"base_model": "identity-base", "status": "running", "started_at": now, "heartbeat_at": now, **fields}
    return FineTuneJob.objects.create(owner=owner, training_file=training_file, **columns)
