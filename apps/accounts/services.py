from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from apps.accounts.keys import generate_key, parse_prefix
from apps.accounts.models import AccountLimits, ApiKey
from workers.errors import InvalidRequest, NotFound


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    plaintext: str  # shown once, never stored


def api_key_create(
    *,
    owner: User,
    name: str = "",
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
    within: ApiKey | None = None,
) -> CreatedApiKey:
    """A new key of ``owner``. A user mints keys with one of their own (``within``): the new key then never gets a
    higher rate limit than that key's, nor outlives it (left out, both are inherited), so an operator's limits on a
    key hold for whatever it creates."""
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidRequest("expires_at must be in the future.", param="expires_at")
    if within is not None:
        rate_limit_per_minute, expires_at = _bounded_by(
            within, rate_limit_per_minute=rate_limit_per_minute, expires_at=expires_at
        )
    generated = generate_key()
    api_key = ApiKey.objects.create(
        owner=owner,
        name=name,
        prefix=generated.prefix,
        key_hash=generated.hashed,
        expires_at=expires_at,
        rate_limit_per_minute=rate_limit_per_minute,
    )
    return CreatedApiKey(api_key=api_key, plaintext=generated.plaintext)


def _bounded_by(
    parent: ApiKey, *, rate_limit_per_minute: int | None, expires_at: datetime | None
) -> tuple[int | None, datetime | None]:
    if rate_limit_per_minute is None:
        rate_limit_per_minute = parent.rate_limit_per_minute
    elif rate_limit_per_minute > parent.effective_rate_limit:
        raise InvalidRequest(
            f"rate_limit_per_minute may be at most {parent.effective_rate_limit}, the limit of the key that creates "
            "it; ask an operator for a key with a higher one.",
            code="rate_limit_above_creating_key",
            param="rate_limit_per_minute",
        )
    if parent.expires_at is not None:
        if expires_at is None:
            expires_at = parent.expires_at
        elif expires_at > parent.expires_at:
            raise InvalidRequest(
                f"expires_at may be {parent.expires_at.isoformat()} at the latest, when the key that creates it "
                "expires.",
                code="expires_after_creating_key",
                param="expires_at",
            )
    return rate_limit_per_minute, expires_at


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_revoke_by_key_or_prefix(*, key_or_prefix: str) -> ApiKey:
    """Operator revocation: accepts the full key, ``tb-<prefix>``, ``tb-<prefix>…`` or the bare prefix."""
    prefix = parse_prefix(key_or_prefix) or key_or_prefix.removeprefix("tb-").rstrip(".…")
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if api_key is None:
            raise NotFound("No API key with that prefix.")
        return api_key_revoke(api_key=api_key)


def user_get_or_create(*, username: str, staff: bool = False, password: str | None = None) -> User:
    user, created = User.objects.get_or_create(username=username)
    changed = created
    if staff and not user.is_staff:
        user.is_staff = user.is_superuser = True
        changed = True
    if password is not None:
        user.set_password(password)
        changed = True
    elif created:
        user.set_unusable_password()
    if changed:
        user.save()
    return user


def account_rate_limit_set(*, owner: User, rate_limit_per_minute: int | None) -> AccountLimits:
    """The requests per minute all of ``owner``'s keys share; None falls back to ACCOUNT_RATE_LIMIT_PER_MINUTE."""
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise InvalidRequest("rate_limit_per_minute must be at least 1.", param="rate_limit_per_minute")
    limits, _ = AccountLimits.objects.update_or_create(
        owner=owner, defaults={"rate_limit_per_minute": rate_limit_per_minute}
    )
    return limits
