from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.ids import new_id
from apps.core.job_states import JobStateManager, TerminalStatusMixin


def new_file_id() -> str:
    return new_id("file")


def new_job_id() -> str:
    return new_id("ftjob")


def new_event_id() -> str:
    return new_id("ftevent")


def new_checkpoint_id() -> str:
    return new_id("ftckpt")


class TrainingFile(models.Model):
    """An uploaded dataset (OpenAI's file object with purpose ``fine-tune``), validated before it is stored."""

    id = models.CharField(primary_key=True, max_length=40, default=new_file_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_files")
    filename = models.CharField(max_length=255)
    bytes = models.PositiveBigIntegerField()
    purpose = models.CharField(max_length=30, default="fine-tune")
    file = models.FileField(upload_to="finetune/files/%Y/%m/")
    format = models.CharField(max_length=30, help_text="Detected record format.")
    total = models.PositiveIntegerField(help_text="Records in the file.")
    valid_count = models.PositiveIntegerField()
    validation = models.JSONField(default=dict, help_text="Validation result: format, counts.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.filename} ({self.id})"


class FineTuneJob(TerminalStatusMixin, models.Model):
    class Status(models.TextChoices):
        VALIDATING_FILES = "validating_files"
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Method(models.TextChoices):
        QLORA = "qlora", "QLoRA (4-bit base + LoRA)"
        LORA = "lora", "LoRA"
        FULL = "full", "Full fine-tuning (DeepSpeed)"

    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.CharField(primary_key=True, max_length=40, default=new_job_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="finetune_jobs")
    name = models.CharField(max_length=100, blank=True)
    base_model = models.CharField(max_length=200)
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.LORA)
    hyperparameters = models.JSONField(default=dict)
    training_file = models.ForeignKey(TrainingFile, on_delete=models.PROTECT, related_name="training_jobs")
    validation_file = models.ForeignKey(
        TrainingFile, on_delete=models.PROTECT, null=True, blank=True, related_name="validation_jobs"
    )
    suffix = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.VALIDATING_FILES, db_index=True)
    error = models.JSONField(null=True, blank=True)
    report = models.JSONField(null=True, blank=True, help_text="Dataset cleaning report.")
    progress = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    trained_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    objects = JobStateManager("status")  # logs each state change (apps/core/job_states.py)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class FineTuneEvent(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_event_id, editable=False)
    job = models.ForeignKey(FineTuneJob, on_delete=models.CASCADE, related_name="events")
    level = models.CharField(max_length=10, default="info")
    type = models.CharField(max_length=10, default="message", help_text="message or metrics")
    message = models.TextField()
    data = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.message


class FineTuneCheckpoint(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_checkpoint_id, editable=False)
    job = models.ForeignKey(FineTuneJob, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.PositiveIntegerField()
    path = models.CharField(max_length=500)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-step"]
        constraints = [models.UniqueConstraint(fields=["job", "step"], name="one_checkpoint_per_step")]

    def __str__(self) -> str:
        return f"{self.job_id} step {self.step}"


class FineTunedModel(models.Model):
    """A trained result, callable as ``model`` once online: a LoRA adapter on its base, or full weights."""

    name = models.CharField(primary_key=True, max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fine_tuned_models")
    job = models.OneToOneField(FineTuneJob, on_delete=models.CASCADE, related_name="fine_tuned_model")
    base_model = models.CharField(max_length=200)
    adapter_path = models.CharField(max_length=500, blank=True, help_text="LoRA adapter (lora/qlora).")
    weights_path = models.CharField(max_length=500, blank=True, help_text="Full weights (full).")
    online = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Deleted through the API: gone from lists and chat, weights removed; the row stays so its job still
    # names the model it produced (and the name is never reused).
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None
