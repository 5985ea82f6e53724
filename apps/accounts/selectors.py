from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet

from apps.accounts.keys import key_matches, parse_prefix
from apps.accounts.models import ApiKey
from apps.core.tenancy import get_owned_or_404


def api_key_list(*, owner: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(owner=owner)


def api_key_for_authentication(*, prefix: str) -> ApiKey | None:
    return (
        ApiKey.objects.select_related("owner", "owner__limits")
        .only(
            "id",
            "prefix",
            "key_hash",
            "expires_at",
            "revoked_at",
            "rate_limit_per_minute",
            "last_used_at",
            "owner__id",
            "owner__username",
            "owner__is_active",
            "owner__is_staff",
            "owner__is_superuser",
            "owner__limits__rate_limit_per_minute",
        )
        .filter(prefix=prefix)
        .first()
    )


def api_key_get(*, owner: User, key_id: str) -> ApiKey:
    return get_owned_or_404(ApiKey.objects.all(), owner=owner, label="API key", pk=key_id)


def api_key_is_usable(*, plaintext: str) -> bool:
    prefix = parse_prefix(plaintext)
    api_key = ApiKey.objects.filter(prefix=prefix).first() if prefix else None
    return bool(
        api_key and key_matches(plaintext, api_key.key_hash) and not api_key.is_revoked and not api_key.is_expired()
    )
