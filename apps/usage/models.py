from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class UsageRecord(models.Model):
    """One billable call."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_records")
    api_key = models.ForeignKey("accounts.ApiKey", on_delete=models.SET_NULL, null=True, blank=True)
    route = models.CharField(max_length=200)
    model = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    images = models.PositiveIntegerField(default=0, help_text="Images generated (text2image).")
    latency_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(default=200)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "created_at"])]

    def __str__(self) -> str:
        return f"{self.route} {self.model} {self.prompt_tokens}+{self.completion_tokens}"
