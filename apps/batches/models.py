"""OpenAI's Batch API: a batch of requests read from an uploaded JSONL file, run in the background, answered in
an output file and an error file."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.ids import new_id
from apps.core.job_states import JobStateManager, TerminalStatusMixin


def _underscored(prefix: str) -> str:
    # OpenAI's batch ids use "_" where its file and job ids use "-".
    return new_id(prefix).replace("-", "_", 1)


def new_batch_id() -> str:
    return _underscored("batch")


def new_batch_request_id() -> str:
    return _underscored("batch_req")


class Batch(TerminalStatusMixin, models.Model):
    class Status(models.TextChoices):
        VALIDATING = "validating"
        FAILED = "failed"
        IN_PROGRESS = "in_progress"
        FINALIZING = "finalizing"
        COMPLETED = "completed"
        EXPIRED = "expired"
        CANCELLING = "cancelling"
        CANCELLED = "cancelled"

    TERMINAL = (Status.FAILED, Status.COMPLETED, Status.EXPIRED, Status.CANCELLED)
    # States in which a runner owns the batch (and keeps its heartbeat fresh).
    ACTIVE = (Status.VALIDATING, Status.IN_PROGRESS, Status.FINALIZING, Status.CANCELLING)

    id = models.CharField(primary_key=True, max_length=40, default=new_batch_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batches")
    api_key = models.ForeignKey(
        "accounts.ApiKey",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        help_text="The key that created the batch; its lines are billed to it.",
    )
    endpoint = models.CharField(max_length=100)
    # Plain ids, not foreign keys: like OpenAI, a batch keeps naming its files after they are deleted.
    input_file_id = models.CharField(max_length=40)
    output_file_id = models.CharField(max_length=40, blank=True)
    error_file_id = models.CharField(max_length=40, blank=True)
    completion_window = models.CharField(max_length=10, default="24h")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.VALIDATING, db_index=True)
    errors = models.JSONField(null=True, blank=True, help_text="Why the batch failed: a list of {code, message}.")
    metadata = models.JSONField(null=True, blank=True)
    model = models.CharField(max_length=200, blank=True, help_text="The model that answered the first line.")
    request_total = models.PositiveIntegerField(default=0)
    request_completed = models.PositiveIntegerField(default=0)
    request_failed = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Runs that claimed the batch (resumes count).")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    in_progress_at = models.DateTimeField(null=True, blank=True)
    finalizing_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    cancelling_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    objects = JobStateManager("status")  # logs each state change (apps/core/job_states.py)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class BatchRequest(models.Model):
    """One finished line, kept while the batch runs: the journal a resumed run skips, and what the output and
    error files are written from when the batch finishes (the rows are then deleted)."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="requests")
    line = models.PositiveIntegerField(help_text="1-based line number in the input file.")
    custom_id = models.CharField(max_length=512, blank=True)
    succeeded = models.BooleanField()
    record = models.JSONField(help_text="The line of the output or error file.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["line"]
        constraints = [models.UniqueConstraint(fields=["batch", "line"], name="one_result_per_batch_line")]

    def __str__(self) -> str:
        return f"{self.batch_id} line {self.line}"
