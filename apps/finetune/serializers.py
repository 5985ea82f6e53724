"""Input shapes (TigerBot, OpenAI and legacy dialects) and the output renderers of the fine-tuning API."""

from __future__ import annotations

import json
from typing import Any

from django.urls import reverse
from rest_framework import serializers

from apps.finetune.models import FineTuneCheckpoint, FineTunedModel, FineTuneEvent, FineTuneJob, TrainingFile


def _ts(value: Any) -> int | None:
    return int(value.timestamp()) if value else None


class JsonObjectField(serializers.Field):
    """A JSON object given as an object (JSON body) or as JSON text (a multipart form field)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else {}
            except ValueError:
                raise serializers.ValidationError("Must be a JSON object (text that parses as one).") from None
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class FileUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    purpose = serializers.CharField(required=False, default="fine-tune")
    skip_invalid_records = serializers.BooleanField(
        required=False, default=False, help_text="Accept a file with some invalid records; they are dropped."
    )


class TigerBotFinetuneCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    file = serializers.FileField(allow_empty_file=True)
    model = serializers.CharField(required=False, max_length=200)
    method = serializers.ChoiceField(choices=FineTuneJob.Method.values, required=False, default="lora")
    hyperparameters = JsonObjectField(required=False, default=dict)
    validation_file = serializers.FileField(required=False, allow_empty_file=True)
    suffix = serializers.CharField(required=False, allow_blank=True, default="")
    skip_invalid_records = serializers.BooleanField(required=False, default=False)


class OpenAIJobCreateSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=200)
    training_file = serializers.CharField(max_length=40)
    validation_file = serializers.CharField(required=False, allow_null=True, max_length=40)
    hyperparameters = JsonObjectField(required=False, default=dict)
    method = serializers.JSONField(
        required=False, help_text="OpenAI's {type: 'supervised', supervised: {...}}, or one of qlora, lora, full"
    )
    training_method = serializers.ChoiceField(choices=FineTuneJob.Method.values, required=False)
    suffix = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=64)
    seed = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    integrations = serializers.ListField(required=False, allow_empty=True, max_length=0)
    metadata = serializers.DictField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        method = attrs.pop("method", None)
        hyperparameters = dict(attrs.get("hyperparameters") or {})
        training_method = attrs.pop("training_method", None)
        if isinstance(method, str):
            training_method = training_method or method
        elif isinstance(method, dict):
            if method.get("type", "supervised") != "supervised":
                raise serializers.ValidationError({"method": "Only supervised fine-tuning is supported."})
            nested = (method.get("supervised") or {}).get("hyperparameters") or {}
            if not isinstance(nested, dict):
                raise serializers.ValidationError({"method": "method.supervised.hyperparameters must be an object."})
            hyperparameters = {**nested, **hyperparameters}
        elif method is not None:
            raise serializers.ValidationError({"method": "Must be an object or a method name."})
        if training_method not in (None, *FineTuneJob.Method.values):
            raise serializers.ValidationError({"method": f"Must be one of {FineTuneJob.Method.values}."})
        return {**attrs, "hyperparameters": hyperparameters, "method": training_method or "lora"}


class LegacyUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    skip_invalid_records = serializers.BooleanField(required=False, default=False)


class LegacyStartTrainSerializer(serializers.Serializer):
    fileId = serializers.CharField(max_length=40)
    name = serializers.CharField(required=False, max_length=100, default="")
    model = serializers.CharField(required=False, max_length=200)
    method = serializers.ChoiceField(choices=FineTuneJob.Method.values, required=False, default="lora")
    hyperparameters = JsonObjectField(required=False, default=dict)


class LegacyFtIdSerializer(serializers.Serializer):
    ftId = serializers.CharField(max_length=40)


class LegacyCallSerializer(LegacyFtIdSerializer):
    text = serializers.CharField(trim_whitespace=False)


# --- Renderers ------------------------------------------------------------------------------------------


def file_url(training_file: TrainingFile | None) -> str | None:
    return reverse("file-content", args=[training_file.pk]) if training_file else None


def render_file(training_file: TrainingFile) -> dict[str, Any]:
    return {
        "id": training_file.id,
        "object": "file",
        "bytes": training_file.bytes,
        "created_at": _ts(training_file.created_at),
        "filename": training_file.filename,
        "purpose": training_file.purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": (
            f"{training_file.total - training_file.valid_count} invalid record(s) will be "
            + ("reported in the batch's error file" if training_file.purpose == "batch" else "skipped")
            if training_file.valid_count < training_file.total
            else None
        ),
        "format": training_file.format,
        "records": training_file.total,
    }


def _model_of(job: FineTuneJob) -> FineTunedModel | None:
    try:
        return job.fine_tuned_model
    except FineTunedModel.DoesNotExist:
        return None


def service_status(model: FineTunedModel | None) -> str:
    if model is None:
        return "unavailable"
    if model.is_deleted:
        return "deleted"
    return "online" if model.online else "offline"


def render_openai_job(job: FineTuneJob) -> dict[str, Any]:
    options = job.hyperparameters
    model = _model_of(job)
    return {
        "object": "fine_tuning.job",
        "id": job.id,
        "model": job.base_model,
        "created_at": _ts(job.created_at),
        "finished_at": _ts(job.finished_at),
        "fine_tuned_model": model.name if model else None,
        "organization_id": f"user-{job.owner_id}",
        "result_files": [],
        "status": job.status,
        "validation_file": job.validation_file_id,
        "training_file": job.training_file_id,
        "hyperparameters": {
            "n_epochs": options.get("n_epochs", "auto"),
            "batch_size": options.get("batch_size", "auto"),
            "learning_rate_multiplier": "auto",
            **options,
        },
        "method": {"type": "supervised", "supervised": {"hyperparameters": options}},
        "training_method": job.method,
        "trained_tokens": job.trained_tokens,
        "error": job.error,
        "seed": options.get("seed", 0),
        "user_provided_suffix": job.suffix or None,
        "estimated_finish": None,
        "integrations": [],
        "metadata": None,
    }


def render_tigerbot_job(job: FineTuneJob, *, detail: bool = False) -> dict[str, Any]:
    model = _model_of(job)
    body = {
        "finetune_id": job.id,
        "name": job.name,
        "created_at": _ts(job.created_at),
        "file_name": job.training_file.filename,
        "file_url": file_url(job.training_file),
        "status": job.status,
        "service_status": service_status(model),
        "available": bool(model and model.online),
        "base_model": job.base_model,
        "method": job.method,
        "fine_tuned_model": model.name if model else None,
    }
    if detail:
        body |= {
            "hyperparameters": job.hyperparameters,
            "progress": job.progress,
            "metrics": job.metrics,
            "report": job.report,
            "error": job.error,
            "finished_at": _ts(job.finished_at),
        }
    return body


def render_event(event: FineTuneEvent) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.event",
        "id": event.id,
        "created_at": _ts(event.created_at),
        "level": event.level,
        "message": event.message,
        "data": event.data,
        "type": event.type,
    }


def render_checkpoint(checkpoint: FineTuneCheckpoint) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.checkpoint",
        "id": checkpoint.id,
        "created_at": _ts(checkpoint.created_at),
        "fine_tuned_model_checkpoint": f"{checkpoint.job_id}:step-{checkpoint.step}",
        "fine_tuning_job_id": checkpoint.job_id,
        "step_number": checkpoint.step,
        "metrics": {
            "step": checkpoint.step,
            "train_loss": checkpoint.metrics.get("loss"),
            "valid_loss": checkpoint.metrics.get("eval_loss"),
        },
    }
