"""Fine-tuning: datasets validated on upload, jobs prepared and trained by status-guarded tasks, results
registered as callable models."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from apps.chat.selectors import chat_model_get
from apps.chat.services import upstream_adapter_load, upstream_adapter_unload
from apps.core import storage
from apps.core.dispatch import enqueue
from apps.finetune.models import FineTuneCheckpoint, FineTunedModel, FineTuneEvent, FineTuneJob, TrainingFile
from apps.finetune.selectors import fine_tuned_model_list, fine_tuned_model_spec, stale_running_jobs
from workers.errors import Conflict, DomainError, InvalidRequest, NotFound, PayloadTooLarge
from workers.finetune.checkpoints import list_checkpoints
from workers.finetune.config import ConfigError, Hyperparameters, TrainJobConfig
from workers.finetune.errors import DatasetError
from workers.finetune.launcher import launch_training, local_gpu_count
from workers.finetune.prepare import prepare_dataset, read_conversations
from workers.finetune.validation import validate_dataset
from workers.runtime.specs import ModelSpec

logger = logging.getLogger(__name__)
Status = FineTuneJob.Status
_SUFFIX_RE = re.compile(r"^[A-Za-z0-9_-]{0,40}$")
# Job options that shape the dataset split rather than training; everything else goes to Hyperparameters.
DATASET_OPTIONS = {"validation_split"}
PREVIEW_EXAMPLES = 5


# --- Files ----------------------------------------------------------------------------------------------


@contextmanager
def _upload_path(upload: UploadedFile) -> Iterator[Path]:
    """A filesystem path for the upload: Django's temporary file when it spooled one, else a copy."""
    if hasattr(upload, "temporary_file_path"):
        yield Path(upload.temporary_file_path())
        return
    with tempfile.NamedTemporaryFile(suffix=Path(upload.name or "").suffix) as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        yield Path(copy.name)


def training_file_create(
    *, owner: AbstractUser, upload: UploadedFile, purpose: str = "fine-tune", skip_invalid_records: bool = False
) -> TrainingFile:
    """Validate the whole file (streamed) and store it only if every record is usable — or, with
    ``skip_invalid_records``, if at least one is (the others are then dropped when a job prepares the data)."""
    if purpose == "batch":  # the Batch API checks its own input files (JSONL requests, not training records)
        from apps.batches.services import batch_input_file_create

        return batch_input_file_create(owner=owner, upload=upload)
    if purpose != "fine-tune":
        raise InvalidRequest(
            "Only purposes 'fine-tune' and 'batch' are supported.", code="invalid_purpose", param="purpose"
        )
    if upload.size > settings.FINETUNE_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"The file is larger than {settings.FINETUNE_MAX_UPLOAD_BYTES} bytes.",
            code="file_too_large",
            param="file",
        )
    with _upload_path(upload) as path:
        result = validate_dataset(path=path, max_bytes=settings.FINETUNE_MAX_UPLOAD_BYTES, max_errors=20)
    usable = result.valid or (skip_invalid_records and result.code is None and result.valid_count > 0)
    if not usable:
        errors = [issue.to_dict() for issue in result.errors]
        first = "; ".join(
            f"line {e['line']}" + (f" ({e['field']})" if e["field"] else "") + f": {e['message']}" for e in errors[:3]
        )
        message = result.message or f"{result.error_count} invalid record(s) of {result.total}: {first}"
        error_class = PayloadTooLarge if result.code == "file_too_large" else InvalidRequest
        raise error_class(
            message,
            code=result.code or "invalid_records",
            param="file",
            details={"errors": errors, "error_count": result.error_count, "total": result.total},
        )
    upload.seek(0)
    with transaction.atomic():
        training_file = TrainingFile(
            owner=owner,
            filename=Path(upload.name or "data").name[:255],
            bytes=upload.size,
            purpose=purpose,
            format=str(result.format),
            total=result.total,
            valid_count=result.valid_count,
            validation=result.to_dict(),
        )
        training_file.file.save(training_file.filename, upload, save=False)
        try:
            training_file.save()
        except Exception:
            training_file.file.delete(save=False)
            raise
    return training_file


def training_file_delete(*, training_file: TrainingFile) -> None:
    if training_file.training_jobs.exists() or training_file.validation_jobs.exists():
        raise Conflict("This file is used by a fine-tuning job and cannot be deleted.", code="file_in_use")
    training_file.file.delete(save=False)
    training_file.delete()


# --- Jobs -----------------------------------------------------------------------------------------------


def _hyperparameters(raw: dict[str, Any], *, method: str, seed: int | None) -> dict[str, Any]:
    """Validated job options. OpenAI's ``"auto"`` means our default; unknown names are an error, not ignored."""
    if not isinstance(raw, dict):
        raise InvalidRequest("hyperparameters must be a JSON object.", param="hyperparameters")
    options = {key: value for key, value in raw.items() if value != "auto"}
    # Not given (or null): the automatic rule of workers.finetune.prepare.validation_size decides at preparation.
    split = options.pop("validation_split", None)
    if split is not None and (isinstance(split, bool) or not isinstance(split, int | float) or not 0 <= split <= 0.5):
        raise InvalidRequest("validation_split must be a number in [0, 0.5].", param="hyperparameters.validation_split")
    if seed is not None:
        options["seed"] = seed
    try:
        hyperparameters = Hyperparameters(**options)
        hyperparameters.validate(method)
    except TypeError as exc:
        unknown = re.search(r"'(\w+)'", str(exc))
        name = unknown.group(1) if unknown else "?"
        raise InvalidRequest(f"Unknown hyperparameter {name!r}.", param=f"hyperparameters.{name}") from None
    except ConfigError as exc:
        raise InvalidRequest(exc.message, param=exc.field) from None
    return options if split is None else {**options, "validation_split": split}


def finetune_job_create(
    *,
    owner: AbstractUser,
    training_file: TrainingFile,
    validation_file: TrainingFile | None = None,
    model: str | None = None,
    method: str = "lora",
    hyperparameters: dict[str, Any] | None = None,
    suffix: str = "",
    seed: int | None = None,
    name: str = "",
) -> FineTuneJob:
    if method not in FineTuneJob.Method.values:
        raise InvalidRequest(f"method must be one of {FineTuneJob.Method.values}.", param="method")
    if not _SUFFIX_RE.match(suffix):
        raise InvalidRequest("suffix may have up to 40 letters, digits, '-' and '_'.", param="suffix")
    base = chat_model_get(user=owner, model=model)
    if base.spec.backend != "local" or base.spec.adapter_path:
        raise InvalidRequest(
            f"The model {base.id!r} cannot be fine-tuned here (only local base models can).",
            code="model_not_trainable",
            param="model",
        )
    options = _hyperparameters(hyperparameters or {}, method=method, seed=seed)
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
        _event(job, f"Created fine-tuning job {job.id} ({method} on {base.id}).")
        enqueue(_prepare_task(), job.id)
    return job


def _prepare_task() -> Any:
    from apps.finetune.tasks import prepare_job_task

    return prepare_job_task


def _train_task() -> Any:
    from apps.finetune.tasks import train_job_task

    return train_job_task


def _job_dir(job: FineTuneJob) -> Path:
    return Path(settings.FINETUNE_DIR) / job.id


# Where a job's files lie in shared storage when hosts share no disk (apps.core.storage remote): the prepared data
# (the training worker may be another host than the preparing one), checkpoints (a resume may run elsewhere) and
# the trained adapter or weights (read by serving workers anywhere).
def _stored(job: FineTuneJob, part: str) -> str:
    return f"finetunes/{job.id}/{part}"


def _event(
    job: FineTuneJob, message: str, *, level: str = "info", type: str = "message", data: dict[str, Any] | None = None
) -> None:
    FineTuneEvent.objects.create(job=job, message=message, level=level, type=type, data=data)


def _fail(job_id: str, *, code: str, message: str, param: str | None = None) -> None:
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
        _event(FineTuneJob.objects.get(pk=job_id), f"Job failed: {message}", level="error")


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
        _fail(job.id, code=str(exc.code), message=exc.message, param="training_file")
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
        _event(
            job,
            f"Files validated: kept {report.kept} of {report.total} examples ({dropped} dropped), "
            f"{report.train_count} for training and {report.validation_count} for validation.",
        )
        enqueue(_train_task(), job.id)


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
        method=job.method,
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
        _event(
            job,
            f"Step {event.get('step')}/{event.get('total_steps')}: training loss={event.get('loss')}",
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
        _event(
            job,
            f"Evaluation: loss={event.get('eval_loss')}",
            type="metrics",
            data={"step": job.progress.get("step"), "valid_loss": event.get("eval_loss")},
        )
    elif kind == "checkpoint":
        FineTuneCheckpoint.objects.update_or_create(
            job=job, step=event["step"], defaults={"path": event["path"], "metrics": dict(job.progress)}
        )
        if storage.is_remote():  # in the background: the event loop also beats the job's heartbeat
            upload = threading.Thread(target=_checkpoint_upload, args=(job, Path(event["path"])), daemon=True)
            upload.start()
            with _uploads_lock:
                _uploads.setdefault(job_id, []).append(upload)
        _event(job, f"Checkpoint saved at step {event['step']}.")
    elif kind == "start":
        resumed = event.get("resumed_from")
        FineTuneJob.objects.filter(pk=job_id).update(progress={**job.progress, "pid": event.get("pid")})
        _event(job, f"Training started{f' (resumed from {Path(resumed).name})' if resumed else ''}.")
    elif kind == "error":
        _event(job, f"Training error {event.get('code')}: {event.get('message')}", level="error")


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


def finetune_job_train(*, job_id: str) -> None:
    """queued → running → succeeded | failed | cancelled, training in a child process group."""
    job = _claim_for_training(job_id)
    if job is None:
        return
    try:
        config = _train_config(job)
    except (ConfigError, KeyError, TypeError, DomainError) as exc:
        _fail(job_id, code="invalid_config", message=str(exc))
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
    with _uploads_lock:
        uploads = _uploads.pop(job_id, [])
    for upload in uploads:  # the checkpoints are stored before the job's outcome is
        upload.join()
    if outcome.status == "cancelled":
        FineTuneJob.objects.filter(pk=job_id).update(status=Status.CANCELLED, finished_at=timezone.now())
        _event(job, "Job cancelled.")
        return
    if outcome.status == "failed":
        _fail(job_id, code=outcome.error_code or "training_failed", message=outcome.error_message or "failed")
        return
    trained = config.output_dir
    if storage.is_remote():  # serving workers on any host fetch it from there (apps.chat.selectors)
        try:
            storage.upload_dir(local_dir=Path(config.output_dir), prefix=_stored(job, "output"), skip=("checkpoint-",))
        except Exception as exc:  # whatever the storage raised: resuming the job uploads it again
            logger.exception("could not store the output of %s", job_id)
            _fail(job_id, code="storage_unavailable", message=f"The trained model could not be stored: {exc}")
            return
        trained = storage.stored_ref(prefix=_stored(job, "output"))
    with transaction.atomic():
        name = _fine_tuned_model_name(job)
        paths = {"weights_path": trained} if job.method == FineTuneJob.Method.FULL else {"adapter_path": trained}
        FineTunedModel.objects.update_or_create(
            job=job, defaults={"name": name, "owner": job.owner, "base_model": job.base_model, **paths}
        )
        FineTuneJob.objects.filter(pk=job_id).update(
            status=Status.SUCCEEDED,
            finished_at=timezone.now(),
            metrics=outcome.metrics,
            trained_tokens=int(outcome.metrics.get("num_input_tokens_seen", 0)) or None,
        )
        _event(job, f"New fine-tuned model created: {name}")
        _event(job, "The job has successfully completed.")


def finetune_job_cancel(*, job: FineTuneJob) -> FineTuneJob:
    with transaction.atomic():
        job = FineTuneJob.objects.select_for_update().get(pk=job.pk)
        if job.is_terminal:
            raise Conflict(f"The job has already {job.status}.", code="job_not_cancellable")
        job.cancel_requested = True
        if job.status != Status.RUNNING:
            job.status, job.finished_at = Status.CANCELLED, timezone.now()
        job.save(update_fields=["cancel_requested", "status", "finished_at"])
        _event(job, "Cancellation requested." if job.status == Status.RUNNING else "Job cancelled.")
    return job


def finetune_job_resume(*, job: FineTuneJob) -> FineTuneJob:
    """A failed job trains again from its last checkpoint (its prepared data is reused)."""
    with transaction.atomic():
        job = FineTuneJob.objects.select_for_update().get(pk=job.pk)
        if job.status != Status.FAILED or not job.report:
            raise Conflict("Only a failed job whose data was prepared can be resumed.", code="job_not_resumable")
        job.status, job.error, job.finished_at, job.cancel_requested = Status.QUEUED, None, None, False
        job.save(update_fields=["status", "error", "finished_at", "cancel_requested"])
        _event(job, "Job resumed from its last checkpoint.")
        enqueue(_train_task(), job.id)
    return job


def fail_stale_jobs() -> int:
    """Mark running jobs whose worker stopped sending heartbeats as failed (they can never finish)."""
    failed = 0
    for job_id in stale_running_jobs().values_list("pk", flat=True):
        _fail(job_id, code="worker_lost", message="The training worker stopped sending heartbeats (it died).")
        failed += 1
    return failed


def _adapter_spec(model: FineTunedModel) -> ModelSpec | None:
    """A LoRA adapter's spec on its base (None for full weights, or a base that is gone)."""
    if not model.adapter_path:
        return None
    try:
        return fine_tuned_model_spec(model=model)
    except DomainError:
        return None


def fine_tuned_model_set_online(*, model: FineTunedModel, online: bool) -> FineTunedModel:
    """Online or offline. A LoRA adapter whose base is served by vLLM (``serve_url``) is loaded into it first
    (every time: vLLM forgets adapters when it restarts); if that fails nothing changes and the call is a 502
    ``adapter_load_failed``. Going offline unloads it, best effort."""
    if online and model.is_deleted:
        raise NotFound(f"The fine-tuned model {model.name!r} was deleted.", code="model_not_found")
    spec = _adapter_spec(model)
    if online and spec is not None:
        upstream_adapter_load(spec=spec)
    if model.online != online:
        model.online = online
        model.save(update_fields=["online"])
    if not online and spec is not None:
        upstream_adapter_unload(spec=spec)
    return model


def fine_tuned_model_delete(*, model: FineTunedModel) -> FineTunedModel:
    """OpenAI's model deletion. The row is marked deleted (and offline) in one transaction, so the model leaves
    lists and chat at once and the job keeps naming it; only once that has committed is its adapter unloaded
    from vLLM and its weights directory (with the checkpoints in it) removed, since neither can be rolled back.
    A model already deleted (a second, possibly concurrent, delete) is a 404."""
    spec = _adapter_spec(model)
    with transaction.atomic():
        locked = FineTunedModel.objects.select_for_update().filter(pk=model.pk, deleted_at__isnull=True).first()
        if locked is None:
            raise NotFound(
                f"The model {model.name!r} does not exist or you do not have access to it.",
                code="model_not_found",
                param="model",
            )
        locked.online, locked.deleted_at = False, timezone.now()
        locked.save(update_fields=["online", "deleted_at"])
        _event(locked.job, f"Fine-tuned model {locked.name} deleted.")
        transaction.on_commit(lambda: _discard_weights(locked, spec))
    return locked


def _discard_weights(model: FineTunedModel, spec: ModelSpec | None) -> None:
    # Files first: a request already under way that finds the adapter gone from vLLM reloads it, which must fail.
    path = Path(model.adapter_path or model.weights_path)
    if storage.is_stored_ref(str(model.adapter_path or model.weights_path)):
        prefix = f"finetunes/{model.job_id}"
        try:
            for part in ("output", "checkpoints"):
                storage.delete_prefix(prefix=f"{prefix}/{part}")
        except OSError:
            logger.warning("Could not remove the stored weights of the deleted model %s", model.name, exc_info=True)
        shutil.rmtree(storage.cache_dir() / prefix, ignore_errors=True)
        path = Path(settings.FINETUNE_DIR) / model.job_id / "output"  # and this host's copy, if it trained it
    root = Path(settings.FINETUNE_DIR).resolve()
    # Only what training wrote under FINETUNE_DIR: a path an operator pointed elsewhere is not ours to remove.
    if path.parts and path.resolve().is_relative_to(root) and path.resolve() != root:
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning(
                "Could not remove the weights of the deleted model %s at %s", model.name, path, exc_info=True
            )
    if spec is not None:
        upstream_adapter_unload(spec=spec)


def fine_tuned_model_delete_owned(user: AbstractUser, name: str) -> bool:
    """Model deleter for ``DELETE /v1/models/{id}``: deletes the caller's own fine-tuned model ``name``;
    False when they have none of that name (others' models do not exist for them)."""
    model = fine_tuned_model_list(owner=user).filter(name=name).first()
    if model is None:
        return False
    fine_tuned_model_delete(model=model)
    return True
