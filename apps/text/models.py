from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.ids import new_id
from apps.core.job_states import FINISHED, JobStateManager, JobStatus


def new_pdf2text_id() -> str:
    return new_id("pdf2text")


def new_summarization_id() -> str:
    return new_id("summ")


class TextJob(models.Model):
    """What both job kinds share: owner, status (the guard every task checks first), timing and the error; newest
    first, indexed for an owner's list and for the stale-job sweep."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)
    file = models.FileField(upload_to="text/", max_length=300, blank=True)
    filename = models.CharField(max_length=255, blank=True, help_text="The uploaded file's name.")
    size_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from the worker.")
    finished_at = models.DateTimeField(null=True, blank=True)
    objects = JobStateManager("status")  # logs each state change (apps/core/job_states.py)

    class Meta:
        abstract = True
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"]), models.Index(fields=["status", "started_at"])]

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def stored_file_names(self) -> list[str]:
        """What its deletion removes from the storage: the upload."""
        return [self.file.name] if self.file.name else []

    @property
    def file_content_type(self) -> str:
        """The media type of the uploaded ``file``: a PDF, unless the kind takes other files too."""
        return "application/pdf"


class Pdf2TextJob(TextJob):
    id = models.CharField(primary_key=True, max_length=40, default=new_pdf2text_id, editable=False)
    password = models.CharField(max_length=500, blank=True, help_text="Kept only until the job ends.")
    pages = models.CharField(max_length=500, blank=True, help_text="Page selection, e.g. 1-3,5; empty = all.")
    layout = models.BooleanField(default=False)
    child_pid = models.IntegerField(null=True, blank=True, help_text="PID of the extraction child process.")
    page_count = models.PositiveIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="{pages: [{page, text, notes}], metadata}")

    class Meta(TextJob.Meta):
        verbose_name = "pdf2text job"

    def __str__(self) -> str:
        return f"{self.pk} {self.filename} ({self.status})"


class SummarizationJob(TextJob):
    class Source(models.TextChoices):
        TEXT = "text", "Text"
        PDF = "pdf", "PDF file"
        TEXT_FILE = "text_file", "Text file"

    id = models.CharField(primary_key=True, max_length=40, default=new_summarization_id, editable=False)
    source = models.CharField(max_length=20, choices=Source.choices)
    password = models.CharField(max_length=500, blank=True, help_text="For an encrypted PDF; kept until the end.")
    input_text = models.TextField(blank=True, help_text="The text to summarise (a PDF's once extracted).")
    model = models.CharField(max_length=200, help_text="The served model's id, resolved at submit time.")
    max_length = models.PositiveIntegerField(null=True, blank=True, help_text="Summary tokens; empty = model's.")
    language = models.CharField(max_length=10, blank=True, help_text="zh or en; empty = detect.")
    progress = models.JSONField(null=True, blank=True, help_text="{stage: map|reduce|done, done, total}")
    steps = models.JSONField(default=list, blank=True, help_text="One entry per map or reduce round.")
    summary = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)

    class Meta(TextJob.Meta):
        verbose_name = "summarization job"

    def __str__(self) -> str:
        return f"{self.pk} {self.model} ({self.status})"

    @property
    def file_content_type(self) -> str:
        return "application/pdf" if self.source == self.Source.PDF else "text/plain"
