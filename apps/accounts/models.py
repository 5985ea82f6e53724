from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from apps.core.ids import new_id


def new_api_key_id() -> str:
    return new_id("key")


class ApiKey(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=new_api_key_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the whole key.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Requests per minute; empty means the platform default."
    )

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return f"tb-{self.prefix}… ({self.name or self.owner})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, *, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def effective_rate_limit(self) -> int:
        return self.rate_limit_per_minute or settings.DEFAULT_RATE_LIMIT_PER_MINUTE

    @property
    def account_rate_limit(self) -> int | None:
        """Requests per minute that all of the owner's keys share, or None for no account-wide limit."""
        limits: AccountLimits | None = getattr(self.owner, "limits", None)
        limit = limits.rate_limit_per_minute if limits is not None else None
        return limit or settings.ACCOUNT_RATE_LIMIT_PER_MINUTE or None


class AccountLimits(models.Model):
    """What an operator allows one account, across all of its keys: a key's own limit cannot lift it, and the keys
    a user mints with the API share it."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="limits"
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Requests per minute across all of the account's keys; empty means ACCOUNT_RATE_LIMIT_PER_MINUTE "
        "(no account-wide limit when that is 0).",
    )

    class Meta:
        verbose_name = verbose_name_plural = "account limits"

    def __str__(self) -> str:
        return f"limits of {self.owner}"
