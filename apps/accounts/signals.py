from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from apps.accounts.keycache import verified_keys
from apps.accounts.models import AccountLimits, ApiKey


@receiver([post_save, post_delete], sender=ApiKey)
@receiver([post_save, post_delete], sender=AccountLimits)
@receiver([post_save, post_delete], sender=get_user_model())
def invalidate_verified_keys(sender: type, **kwargs: Any) -> None:
    if sender is ApiKey and kwargs.get("created"):
        return  # a new key invalidates nothing
    # Now for this process, and again after commit so no process re-caches the row as it was before the change.
    verified_keys.invalidate_everywhere()
    transaction.on_commit(verified_keys.invalidate_everywhere)
