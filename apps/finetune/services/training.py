"""Preparing and training a job on a worker: validating_files → queued → running → succeeded | failed | cancelled,
status-guarded so that a redelivered task does nothing twice; a running job whose worker died resumes from its
newest checkpoint."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.chat.selectors import chat_model_get
from apps.core import storage
from apps.finetune.models import FineTuneCheckpoint, FineTunedModel, FineTuneJob
from apps.finetune.selectors import stale_running_jobs
from apps.finetune.services.jobs import enqueue_training, finetune_event_create, finetune_job_fail
from workers.errors import DomainError
from workers.finetune.checkpoints import list_checkpoints
from workers.finetune.config import ConfigError, Hyperparameters, Method, TrainJobConfig
from workers.finetune.errors import DatasetError
from workers.finetune.launcher import launch_training, local_gpu_count
from workers.finetune.options import DATASET_OPTIONS
from workers.finetune.prepare import prepare_dataset, read_conversations

logger = logging.getLogger(__name__)
Status = FineTuneJob.Status
PREVIEW_EXAMPLES = 5


def _job_dir(job: FineTuneJob) -> Path:
    return Path(settings.FINETUNE_DIR) / job.id


# Where a job's files lie in shared storage when hosts share no disk (apps.core.storage remote): the prepared data
# (the training worker may be another host than the preparing one), checkpoints (a resume may run elsewhere) and
# the trained adapter or weights (read by serving workers anywhere).
def _stored(job: FineTuneJob, part: str) -> str:
    return f"finetunes/{job.id}/{part}"


def finetune_job_prepare(*, job_id: str) -> None:
    """validating_files → queued: clean, dedupe and split the data with the base model's tokenizer."""
    job = (
        FineTuneJob.objects.select_related("owner", "training_file", "validation_file")
        .filter(pk=job_id, status=Status.VALIDATING_FILES)
        .first()
    )
    if job is None:
        return  # already prepared, cancelled or unknown: nothing to do
    base = chat_model_get(user=job.owner, model=job.base_model)
    options = dict(job.hyperparameters)
    files = [f.file.name for f in (job.training_file, job.validation_file) if f is not None]
    try:
        report = prepare_dataset(
            path=storage.local_path(name=job.training_file.file.name),
            out_dir=_job_dir(job) / "data",
            max_length=options.get("max_length", 1024),
            tokenizer_path=base.spec.path,
            family=base.spec.family,
            validation_path=storage.local_path(name=job.validation_file.file.name) if job.validation_file else None,
            seed=options.get("seed", 0),
            validation_fraction=options.get("validation_split"),
            max_bytes=settings.FINETUNE_MAX_UPLOAD_BYTES,
        )
    except DatasetError as exc:
        finetune_job_fail(job_id=job.id, code=str(exc.code), message=exc.message, param="training_file")
        return
    finally:
        for name in files:
            storage.evict(name=name)
    if storage.is_remote():
        storage.upload_dir(local_dir=_job_dir(job) / "data", prefix=_stored(job, "data"))
    summary = report.to_dict()
    summary["preview"] = [c.to_dict() for c in read_conversations(report.train_path)[:PREVIEW_EXAMPLES]]
    updated = FineTuneJob.objects.filter(pk=job.id, status=Status.VALIDATING_FILES).update(
        status=Status.QUEUED, report=summary
    )
    if updated:
        dropped = sum(item["count"] for item in summary["dropped"].values())
        finetune_event_create(
            job=job,
            message=f"Files validated: kept {report.kept} of {report.total} examples ({dropped} dropped), "
            f"{report.train_count} for training and {report.validation_count} for validation.",
        )
        enqueue_training(job=job)


def _claim_for_training(job_id: str) -> FineTuneJob | None:
    """queued → running; a running job whose heartbeat stopped (its worker died and the task was redelivered)
    is taken over and resumes from its last checkpoint."""
    now = timezone.now()
    with transaction.atomic():
        job = FineTuneJob.objects.select_for_update().select_related("owner").filter(pk=job_id).first()
        if job is None:
            return None
        resumable = job.status == Status.RUNNING and stale_running_jobs().filter(pk=job_id).exists()
        if job.status != Status.QUEUED and not resumable:
            return None
        if job.cancel_requested:
            job.status, job.finished_at = Status.CANCELLED, now
            job.save(update_fields=["status", "finished_at"])
            return None
        job.status, job.heartbeat_at, job.attempts = Status.RUNNING, now, job.attempts + 1
        job.started_at = job.started_at or now
        job.save(update_fields=["status", "heartbeat_at", "attempts", "started_at"])
    return job


def _train_config(job: FineTuneJob) -> TrainJobConfig:
    base = chat_model_get(user=job.owner, model=job.base_model)
    options = {k: v for k, v in job.hyperparameters.items() if k not in DATASET_OPTIONS}
    report = job.report or {}
    train, validation = report["train_path"], report.get("validation_path") if report.get("validation_count") else None
    if storage.is_remote():  # prepared on another host, perhaps: this host's copy of the data
        data = _job_dir(job) / "data"
        if not (data / Path(train).name).exists():
            storage.download_dir(prefix=_stored(job, "data"), local_dir=data)
        train, validation = str(data / Path(train).name), validation and str(data / Path(validation).name)
    return TrainJobConfig(
        base_model_path=base.spec.path,
        family=base.spec.family,
        method=cast(Method, job.method),
        output_dir=str(_job_dir(job) / "output"),
        train_file=train,
        validation_file=validation if options.get("eval", True) else None,
        hyperparameters=Hyperparameters(**options),
        resume=True,
        nproc_per_node=max(1, local_gpu_count()),
    )


def finetune_job_record_event(*, job_id: str, event: dict[str, Any]) -> None:
    """One event of the training process: progress, evaluation, checkpoint, start or error."""
    job = FineTuneJob.objects.get(pk=job_id)
    kind = event.get("event")
    if kind == "progress":
        progress = {
            k: event.get(k) for k in ("step", "total_steps", "epoch", "loss", "learning_rate", "tokens_per_second")
        }
        FineTuneJob.objects.filter(pk=job_id).update(progress={**job.progress, **progress}, heartbeat_at=timezone.now())
        finetune_event_create(
            job=job,
            message=f"Step {event.get('step')}/{event.get('total_steps')}: training loss={event.get('loss')}",
            type="metrics",
            data={
                "step": event.get("step"),
                "train_loss": event.get("loss"),
                "learning_rate": event.get("learning_rate"),
                "epoch": event.get("epoch"),
            },
        )
    elif kind == "eval":
        FineTuneJob.objects.filter(pk=job_id).update(progress={**job.progress, "eval_loss": event.get("eval_loss")})
        finetune_event_create(
            job=job,
            message=f"Evaluation: loss={event.get('eval_loss')}",
            type="metrics",
            data={"step": job.progress.get("step"), "valid_loss": event.get("eval_loss")},
        )
    elif kind == "checkpoint":
        FineTuneCheckpoint.objects.update_or_create(
            job=job, step=event["step"], defaults={"path": event["path"], "metrics": dict(job.progress)}
        )
        _checkpoints_forget_rotated(job)
        if storage.is_remote():  # in the background: the event loop also beats the job's heartbeat
            upload = threading.Thread(target=_checkpoint_upload, args=(job, Path(event["path"])), daemon=True)
            upload.start()
            with _uploads_lock:
                _uploads.setdefault(job_id, []).append(upload)
        finetune_event_create(job=job, message=f"Checkpoint saved at step {event['step']}.")
    elif kind == "start":
        resumed = event.get("resumed_from")
        FineTuneJob.objects.filter(pk=job_id).update(progress={**job.progress, "pid": event.get("pid")})
        finetune_event_create(
            job=job, message=f"Training started{f' (resumed from {Path(resumed).name})' if resumed else ''}."
        )
    elif kind == "error":
        finetune_event_create(
            job=job, message=f"Training error {event.get('code')}: {event.get('message')}", level="error"
        )


_uploads: dict[str, list[threading.Thread]] = {}  # checkpoint uploads under way, per job
_uploads_lock = threading.Lock()


def _checkpoint_upload(job: FineTuneJob, path: Path) -> None:
    """Store a checkpoint so that a resume on another host starts from it (the newest one is what counts)."""
    try:
        storage.upload_dir(local_dir=path, prefix=f"{_stored(job, 'checkpoints')}/{path.name}")
    except OSError:  # e.g. the trainer already rotated it away: the next one will do
        logger.warning("Could not store checkpoint %s of job %s", path.name, job.id, exc_info=True)


def _checkpoint_restore(job: FineTuneJob, output_dir: Path) -> None:
    """Before a (re)start on a host without the job's checkpoints: fetch the newest stored one."""
    if list_checkpoints(output_dir):
        return
    for step in job.checkpoints.order_by("-step").values_list("step", flat=True)[:3]:
        try:
            storage.download_dir(
                prefix=f"{_stored(job, 'checkpoints')}/checkpoint-{step}", local_dir=output_dir / f"checkpoint-{step}"
            )
            return
        except storage.StoredFileMissing:
            continue


def _heartbeat(job_id: str) -> None:
    FineTuneJob.objects.filter(pk=job_id, status=Status.RUNNING).update(heartbeat_at=timezone.now())


def _fine_tuned_model_name(job: FineTuneJob) -> str:
    return f"ft:{job.base_model}:{job.suffix or job.owner.get_username()}:{job.id.removeprefix('ftjob-')[:8]}"


def _checkpoints_forget_rotated(job: FineTuneJob) -> None:
    """Drop the rows of checkpoints the trainer has removed since (it keeps the last ``save_total_limit``), so the
    list names only checkpoints that exist. On a remote storage every checkpoint stays stored, and so do their rows."""
    if storage.is_remote():
        return
    gone = [checkpoint.pk for checkpoint in job.checkpoints.all() if not Path(checkpoint.path).is_dir()]
    FineTuneCheckpoint.objects.filter(pk__in=gone).delete()


def finetune_job_train(*, job_id: str) -> None:
    """queued → running → succeeded | failed | cancelled, training in a child process group."""
    job = _claim_for_training(job_id)
    if job is None:
        return
    try:
        config = _train_config(job)
    except (ConfigError, KeyError, TypeError, DomainError) as exc:
        finetune_job_fail(job_id=job_id, code="invalid_config", message=str(exc))
        return
    if storage.is_remote():
        _checkpoint_restore(job, Path(config.output_dir))
    outcome = launch_training(
        config=config,
        on_event=lambda event: finetune_job_record_event(job_id=job_id, event=event),
        cancel_check=lambda: FineTuneJob.objects.filter(pk=job_id, cancel_requested=True).exists(),
        heartbeat=lambda: _heartbeat(job_id),
        timeout_s=settings.FINETUNE_JOB_TIMEOUT_S,
    )
    _checkpoints_forget_rotated(job)
    with _uploads_lock:
        uploads = _uploads.pop(job_id, [])
    for upload in uploads:  # the checkpoints are stored before the job's outcome is
        upload.join()
    if outcome.status == "cancelled":
        # finetune_job_cancel already made the job cancelled; a job whose cancel was only requested (by a web
        # process older than that) is cancelled here.
        FineTuneJob.objects.filter(pk=job_id, status=Status.RUNNING).update(
            status=Status.CANCELLED, finished_at=timezone.now()
        )
        finetune_event_create(job=job, message="Training process stopped.")
        return
    if outcome.status == "failed":
        finetune_job_fail(
            job_id=job_id, code=outcome.error_code or "training_failed", message=outcome.error_message or "failed"
        )
        return
    trained = config.output_dir
    if storage.is_remote():  # serving workers on any host fetch it from there (apps.chat.selectors)
        try:
            storage.upload_dir(local_dir=Path(config.output_dir), prefix=_stored(job, "output"), skip=("checkpoint-",))
        except Exception as exc:  # whatever the storage raised: resuming the job uploads it again
            logger.exception("could not store the output of %s", job_id)
            finetune_job_fail(
                job_id=job_id, code="storage_unavailable", message=f"The trained model could not be stored: {exc}"
            )
            return
        trained = storage.stored_ref(prefix=_stored(job, "output"))
    with transaction.atomic():
        # Only a job still running succeeds: one cancelled (or failed by the stale-job sweep) meanwhile keeps its
        # state and gets no model.
        published = FineTuneJob.objects.select_for_update().filter(pk=job_id, status=Status.RUNNING).exists()
        if published:
            _publish(job, trained=trained, metrics=outcome.metrics)
    if not published:
        _not_published(job, stored=storage.is_remote())


def _publish(job: FineTuneJob, *, trained: str, metrics: dict[str, float]) -> None:
    """running → succeeded, with the job's fine-tuned model."""
    name = _fine_tuned_model_name(job)
    paths = {"weights_path": trained} if job.method == FineTuneJob.Method.FULL else {"adapter_path": trained}
    FineTunedModel.objects.update_or_create(
        job=job, defaults={"name": name, "owner": job.owner, "base_model": job.base_model, **paths}
    )
    FineTuneJob.objects.filter(pk=job.pk).update(
        status=Status.SUCCEEDED,
        finished_at=timezone.now(),
        metrics=metrics,
        trained_tokens=int(metrics.get("num_input_tokens_seen", 0)) or None,
    )
    finetune_event_create(job=job, message=f"New fine-tuned model created: {name}")
    finetune_event_create(job=job, message="The job has successfully completed.")


def _not_published(job: FineTuneJob, *, stored: bool) -> None:
    """Training finished, but the job had ended meanwhile (cancelled): what it wrote is no model of the job."""
    if stored:
        try:
            storage.delete_prefix(prefix=_stored(job, "output"))
        except OSError:
            logger.warning("Could not remove the stored output of %s", job.id, exc_info=True)
    finetune_event_create(job=job, message="Training process stopped; its output was not published.")
