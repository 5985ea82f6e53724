"""Response shapes of the fine-tuning API: OpenAI's file, job, event and checkpoint objects field for field
(``openai.types.file_object``, ``openai.types.fine_tuning``), TigerBot's jobs, and the legacy ``/bot-service/ft``
data. Each builds its body (``Serializer(obj).data``) and documents it."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import BlankAsNullField, ConstantField, UnixTimeField
from apps.core.serializers import DeletedSerializer, PageSerializer
from apps.finetune.models import FineTuneCheckpoint, FineTunedModel, FineTuneJob, TrainingFile

_NULLABLE_INT = {"type": "integer", "nullable": True}
_NULLABLE_STRING = {"type": "string", "nullable": True}
_AUTO_OR_NUMBER = {"oneOf": [{"type": "string", "enum": ["auto"]}, {"type": "number"}]}
SERVICE_STATUSES = ("unavailable", "deleted", "online", "offline")


def model_of(job: FineTuneJob) -> FineTunedModel | None:
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


# --- OpenAI: files --------------------------------------------------------------------------------------


class FileObjectSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = ConstantField("file")
    bytes = serializers.IntegerField()
    created_at = UnixTimeField()
    filename = serializers.CharField()
    purpose = serializers.CharField()
    status = ConstantField("processed")
    expires_at = serializers.SerializerMethodField()
    status_details = serializers.SerializerMethodField()
    format = serializers.CharField(help_text="The detected record format.")
    records = serializers.IntegerField(source="total", help_text="Records in the file.")

    @extend_schema_field(_NULLABLE_INT)
    def get_expires_at(self, training_file: TrainingFile) -> None:
        return None

    @extend_schema_field(_NULLABLE_STRING)
    def get_status_details(self, training_file: TrainingFile) -> str | None:
        invalid = training_file.total - training_file.valid_count
        if invalid <= 0:
            return None
        fate = "reported in the batch's error file" if training_file.purpose == "batch" else "skipped"
        return f"{invalid} invalid record(s) will be {fate}"


class FileObjectPageSerializer(PageSerializer):
    data = FileObjectSerializer(many=True)


class FileDeletedSerializer(DeletedSerializer):
    object_name = "file"


# --- OpenAI: fine-tuning jobs ---------------------------------------------------------------------------


class FineTuningJobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    param = serializers.CharField(allow_null=True)


@extend_schema_field(_AUTO_OR_NUMBER)
class AutoOrNumberField(serializers.ReadOnlyField):
    pass


class FineTuningJobHyperparametersSerializer(serializers.Serializer):
    """OpenAI's three (`"auto"` when left to the default), then every option the job was created with."""

    n_epochs = AutoOrNumberField()
    batch_size = AutoOrNumberField()
    learning_rate_multiplier = AutoOrNumberField()

    def to_representation(self, instance: dict[str, Any]) -> dict[str, Any]:
        return {
            "n_epochs": instance.get("n_epochs", "auto"),
            "batch_size": instance.get("batch_size", "auto"),
            "learning_rate_multiplier": "auto",
            **instance,
        }


class FineTuningSupervisedMethodSerializer(serializers.Serializer):
    hyperparameters = serializers.DictField()


class FineTuningJobMethodSerializer(serializers.Serializer):
    type = ConstantField("supervised")
    supervised = FineTuningSupervisedMethodSerializer(source="*")


class FineTuningJobSerializer(serializers.Serializer):
    object = ConstantField("fine_tuning.job")
    id = serializers.CharField()
    model = serializers.CharField(source="base_model")
    created_at = UnixTimeField()
    finished_at = UnixTimeField()
    fine_tuned_model = serializers.SerializerMethodField()
    organization_id = serializers.SerializerMethodField()
    result_files = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=FineTuneJob.Status.values)
    validation_file = serializers.CharField(source="validation_file_id", allow_null=True)
    training_file = serializers.CharField(source="training_file_id")
    hyperparameters = FineTuningJobHyperparametersSerializer()
    method = FineTuningJobMethodSerializer(source="*")
    training_method = serializers.ChoiceField(source="method", choices=FineTuneJob.Method.values)
    trained_tokens = serializers.IntegerField(allow_null=True)
    error = FineTuningJobErrorSerializer(allow_null=True)
    seed = serializers.SerializerMethodField()
    user_provided_suffix = BlankAsNullField(source="suffix")
    estimated_finish = serializers.SerializerMethodField()
    integrations = serializers.SerializerMethodField()
    metadata = serializers.SerializerMethodField()

    @extend_schema_field(_NULLABLE_STRING)
    def get_fine_tuned_model(self, job: FineTuneJob) -> str | None:
        model = model_of(job)
        return model.name if model else None

    def get_organization_id(self, job: FineTuneJob) -> str:
        return f"user-{job.owner_id}"

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_result_files(self, job: FineTuneJob) -> list[str]:
        return []

    def get_seed(self, job: FineTuneJob) -> int:
        return int(job.hyperparameters.get("seed", 0))

    @extend_schema_field(_NULLABLE_INT)
    def get_estimated_finish(self, job: FineTuneJob) -> None:
        return None

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_integrations(self, job: FineTuneJob) -> list[dict[str, Any]]:
        return []

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}, "nullable": True})
    def get_metadata(self, job: FineTuneJob) -> None:
        return None


class FineTuningJobPageSerializer(PageSerializer):
    data = FineTuningJobSerializer(many=True)


class FineTuningJobEventSerializer(serializers.Serializer):
    object = ConstantField("fine_tuning.job.event")
    id = serializers.CharField()
    created_at = UnixTimeField()
    level = serializers.ChoiceField(choices=["info", "warn", "error"])
    message = serializers.CharField()
    # OpenAI names it ``data``, like Serializer.data (the metaclass moves declared fields out of the class).
    data = serializers.JSONField(allow_null=True)  # type: ignore[assignment]
    type = serializers.ChoiceField(choices=["message", "metrics"])


class FineTuningJobEventPageSerializer(PageSerializer):
    data = FineTuningJobEventSerializer(many=True)


class FineTuningCheckpointMetricsSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    train_loss = serializers.FloatField(allow_null=True)
    valid_loss = serializers.FloatField(allow_null=True)


class FineTuningJobCheckpointSerializer(serializers.Serializer):
    object = ConstantField("fine_tuning.job.checkpoint")
    id = serializers.CharField()
    created_at = UnixTimeField()
    fine_tuned_model_checkpoint = serializers.SerializerMethodField()
    fine_tuning_job_id = serializers.CharField(source="job_id")
    step_number = serializers.IntegerField(source="step")
    metrics = serializers.SerializerMethodField()

    def get_fine_tuned_model_checkpoint(self, checkpoint: FineTuneCheckpoint) -> str:
        return f"{checkpoint.job_id}:step-{checkpoint.step}"

    @extend_schema_field(FineTuningCheckpointMetricsSerializer)
    def get_metrics(self, checkpoint: FineTuneCheckpoint) -> dict[str, Any]:
        return {
            "step": checkpoint.step,
            "train_loss": checkpoint.metrics.get("loss"),
            "valid_loss": checkpoint.metrics.get("eval_loss"),
        }


class FineTuningJobCheckpointPageSerializer(PageSerializer):
    data = FineTuningJobCheckpointSerializer(many=True)


# --- TigerBot: /v1/finetunes ----------------------------------------------------------------------------


class FinetuneSerializer(serializers.Serializer):
    finetune_id = serializers.CharField(source="id")
    name = serializers.CharField()
    created_at = UnixTimeField()
    file_name = serializers.CharField(source="training_file.filename")
    file_url = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=FineTuneJob.Status.values)
    service_status = serializers.SerializerMethodField()
    available = serializers.SerializerMethodField()
    base_model = serializers.CharField()
    method = serializers.ChoiceField(choices=FineTuneJob.Method.values)
    fine_tuned_model = serializers.SerializerMethodField()

    def get_file_url(self, job: FineTuneJob) -> str:
        return reverse("file-content", args=[job.training_file_id])

    @extend_schema_field(serializers.ChoiceField(choices=SERVICE_STATUSES))
    def get_service_status(self, job: FineTuneJob) -> str:
        return service_status(model_of(job))

    def get_available(self, job: FineTuneJob) -> bool:
        model = model_of(job)
        return bool(model and model.online)

    @extend_schema_field(_NULLABLE_STRING)
    def get_fine_tuned_model(self, job: FineTuneJob) -> str | None:
        model = model_of(job)
        return model.name if model else None


class ProgressField(serializers.DictField):
    """The job's progress as its owner sees it: without the training process's pid, which is the host's business."""

    def to_representation(self, value: Any) -> dict[str, Any]:
        return {key: item for key, item in super().to_representation(value).items() if key != "pid"}


class FinetuneDetailSerializer(FinetuneSerializer):
    hyperparameters = serializers.DictField()
    progress = ProgressField()
    metrics = serializers.DictField()
    report = serializers.DictField(allow_null=True, help_text="The dataset cleaning report, once prepared.")
    error = FineTuningJobErrorSerializer(allow_null=True)
    finished_at = UnixTimeField()


class FinetunePageSerializer(PageSerializer):
    data = FinetuneSerializer(many=True)


class FinetuneServiceSerializer(serializers.Serializer):
    finetune_id = serializers.CharField()
    service_status = serializers.ChoiceField(choices=SERVICE_STATUSES)
    available = serializers.BooleanField()


class FinetuneChatSerializer(serializers.Serializer):
    result = serializers.CharField(source="text")
    input_tokens = serializers.IntegerField(source="prompt_tokens")
    total_tokens = serializers.SerializerMethodField()

    def get_total_tokens(self, result: Any) -> int:
        return int(result.prompt_tokens + result.completion_tokens)


# --- Legacy: /bot-service/ft/* (the ``data`` of the envelope) ---------------------------------------------


class LegacyUploadedSerializer(serializers.Serializer):
    fileId = serializers.CharField(source="id")
    fileName = serializers.CharField(source="filename")
    records = serializers.IntegerField(source="total")


class LegacyStartedSerializer(serializers.Serializer):
    ftId = serializers.CharField(source="id")
    status = serializers.ChoiceField(choices=FineTuneJob.Status.values)


class LegacyCallResultSerializer(serializers.Serializer):
    result = serializers.ListField(child=serializers.CharField())


class LegacyServiceSerializer(serializers.Serializer):
    ftId = serializers.CharField()
    serviceStatus = serializers.ChoiceField(choices=SERVICE_STATUSES)


class LegacyFinetuneListSerializer(serializers.Serializer):
    list = FinetuneSerializer(many=True)
