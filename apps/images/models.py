from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.ids import new_id
from apps.core.job_states import FINISHED, JobStateManager, JobStatus


def new_image_job_id() -> str:
    return new_id("imggen")


def new_image_id() -> str:
    return new_id("img")


class ImageJob(models.Model):
    """One ``/v1/images/generations`` request: its parameters, status (the guard every task checks first),
    progress in denoising steps, and the images once done."""

    Status = JobStatus

    id = models.CharField(primary_key=True, max_length=40, default=new_image_job_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    route = models.CharField(max_length=200, help_text="The path it was requested at (for usage records).")
    model = models.CharField(max_length=200, help_text="The image model's id, resolved at submit time.")
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    n = models.PositiveSmallIntegerField(default=1)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    steps = models.PositiveIntegerField()
    guidance_scale = models.FloatField(null=True, blank=True)
    seed = models.BigIntegerField(null=True, blank=True, help_text="Base seed as given; empty = random.")
    response_format = models.CharField(max_length=10, default="url")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    steps_done = models.PositiveIntegerField(default=0)
    steps_total = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)
    error_param = models.CharField(max_length=50, blank=True)
    error_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from the worker.")
    finished_at = models.DateTimeField(null=True, blank=True)
    objects = JobStateManager("status")

    class Meta:
        verbose_name = "image job"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"]), models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.pk} {self.model} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def stored_file_names(self) -> list[str]:
        """What its deletion removes from the storage: every image and its thumbnail."""
        return [name for image in self.images.all() for name in (image.file.name, image.thumbnail.name) if name]


class GeneratedImage(models.Model):
    """One stored image of a job (and its thumbnail), served to its owner at ``/v1/images/files/{id}``."""

    id = models.CharField(primary_key=True, max_length=40, default=new_image_id, editable=False)
    job = models.ForeignKey(ImageJob, on_delete=models.CASCADE, related_name="images")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    index = models.PositiveSmallIntegerField()
    file = models.FileField(upload_to="images/", max_length=300)
    thumbnail = models.FileField(upload_to="images/", max_length=300, blank=True)
    content_type = models.CharField(max_length=50, default="image/png")
    seed = models.BigIntegerField(null=True, blank=True)
    revised_prompt = models.TextField(blank=True)
    size_bytes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="one_image_per_job_index")]

    def __str__(self) -> str:
        return f"{self.pk} ({self.job_id} #{self.index})"
