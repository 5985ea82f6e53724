"""The job lifecycle as the API drives it: create (then prepared and trained by tasks), cancel, resume, and failing
jobs whose worker died; plus the event log every step writes to."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from apps.chat.selectors import chat_model_get
from apps.core.dispatch import enqueue
from apps.finetune.models import FineTuneEvent, FineTuneJob, TrainingFile
from apps.finetune.selectors import stale_running_jobs
from workers.errors import Conflict, InvalidRequest
from workers.finetune.config import ConfigError, Method
from workers.finetune.options import job_options

Status = FineTuneJob.Status


def finetune_event_create(
    *, job: FineTuneJob, message: str, level: str = "info", type: str = "message", data: dict[str, Any] | None = None
) -> None:
    FineTuneEvent.objects.create(job=job, message=message, level=level, type=type, data=data)


def finetune_job_fail(*, job_id: str, code: str, message: str, param: str | None = None) -> None:
    """A job not yet finished fails with ``code``; one already finished stays as it is."""
    updated = (
        FineTuneJob.objects.filter(pk=job_id)
        .exclude(status__in=FineTuneJob.TERMINAL)
        .update(
            status=Status.FAILED,
            error={"code": code, "message": message, "param": param},
            finished_at=timezone.now(),
        )
    )
    if updated:
        finetune_event_create(job=FineTuneJob.objects.get(pk=job_id), message=f"Job failed: {message}", level="error")


def enqueue_training(*, job: FineTuneJob) -> None:
    from apps.finetune.tasks import train_job_task

    enqueue(train_job_task, job.id)


def finetune_job_create(
    *,
    owner: User,
    training_file: TrainingFile,
    validation_file: TrainingFile | None = None,
    model: str | None = None,
    method: str = "lora",
    hyperparameters: dict[str, Any] | None = None,
    suffix: str = "",
    seed: int | None = None,
    name: str = "",
) -> FineTuneJob:
    """``method`` and ``suffix`` as the request serializers checked them; ``hyperparameters`` are checked here,
    with the method, against the training config's declared fields (OpenAI's ``"auto"`` means our default)."""
    base = chat_model_get(user=owner, model=model)
    if base.spec.backend != "local" or base.spec.adapter_path:
        raise InvalidRequest(
            f"The model {base.id!r} cannot be fine-tuned here (only local base models can).",
            code="model_not_trainable",
            param="model",
        )
    try:
        options = job_options(hyperparameters or {}, method=cast(Method, method), seed=seed)
    except ConfigError as exc:
        raise InvalidRequest(exc.message, param=exc.field) from None
    with transaction.atomic():
        job = FineTuneJob.objects.create(
            owner=owner,
            name=name or training_file.filename,
            base_model=base.id,
            method=method,
            hyperparameters=options,
            training_file=training_file,
            validation_file=validation_file,
            suffix=suffix,
        )
        finetune_event_create(job=job, message=f"Created fine-tuning job {job.id} ({method} on {base.id}).")
        from apps.finetune.tasks import prepare_job_task

        enqueue(prepare_job_task, job.id)
    return job


def finetune_job_cancel(*, job: FineTuneJob) -> FineTuneJob:
    """Any job not yet finished is ``cancelled`` at once, as OpenAI answers it. A running one also keeps
    ``cancel_requested``: its worker polls that flag, stops the training process group, and leaves the status as
    it is (whatever the process ended with, nothing it wrote is published)."""
    with transaction.atomic():
        job = FineTuneJob.objects.select_for_update().get(pk=job.pk)
        if job.is_terminal:
            raise Conflict(_NOT_CANCELLABLE[job.status], code="job_not_cancellable")
        running = job.status == Status.RUNNING
        job.cancel_requested, job.status, job.finished_at = True, Status.CANCELLED, timezone.now()
        job.save(update_fields=["cancel_requested", "status", "finished_at"])
        finetune_event_create(
            job=job, message="Job cancelled; its training process is being stopped." if running else "Job cancelled."
        )
    return job


_NOT_CANCELLABLE: dict[str, str] = {
    Status.SUCCEEDED: "The job has already succeeded.",
    Status.FAILED: "The job has already failed.",
    Status.CANCELLED: "The job has already been cancelled.",
}


def finetune_job_resume(*, job: FineTuneJob) -> FineTuneJob:
    """A failed job trains again from its last checkpoint (its prepared data is reused)."""
    with transaction.atomic():
        job = FineTuneJob.objects.select_for_update().get(pk=job.pk)
        if job.status != Status.FAILED or not job.report:
            raise Conflict("Only a failed job whose data was prepared can be resumed.", code="job_not_resumable")
        job.status, job.error, job.finished_at, job.cancel_requested = Status.QUEUED, None, None, False
        job.save(update_fields=["status", "error", "finished_at", "cancel_requested"])
        finetune_event_create(job=job, message="Job resumed from its last checkpoint.")
        enqueue_training(job=job)
    return job


def fail_stale_jobs() -> int:
    """Mark running jobs whose worker stopped sending heartbeats as failed (they can never finish)."""
    failed = 0
    for job_id in stale_running_jobs().values_list("pk", flat=True):
        finetune_job_fail(
            job_id=job_id, code="worker_lost", message="The training worker stopped sending heartbeats (it died)."
        )
        failed += 1
    return failed
