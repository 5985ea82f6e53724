"""``Authorization: Bearer tb-<prefix>.<secret>``; each failure says which problem it is."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from apps.accounts.keycache import verified_keys
from apps.accounts.keys import key_matches, parse_prefix
from apps.accounts.models import ApiKey
from apps.accounts.selectors import api_key_for_authentication


def _fail(message: str, code: str) -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed(detail=message, code=code)


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[object, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword or len(header) != 2:
            raise _fail("Malformed Authorization header: expected 'Bearer <API_KEY>'.", "malformed_authorization")
        try:
            plaintext = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise _fail("The API key contains non-ASCII characters.", "malformed_api_key") from None
        prefix = parse_prefix(plaintext)
        if prefix is None:
            raise _fail("Malformed API key: expected 'tb-<prefix>.<secret>'.", "malformed_api_key")
        api_key = verified_keys.get(prefix)
        if api_key is None:
            api_key = api_key_for_authentication(prefix=prefix)
            if api_key is not None and not api_key.is_revoked and api_key.owner.is_active:
                verified_keys.put(api_key)
        if api_key is None or not key_matches(plaintext, api_key.key_hash):
            raise _fail("Invalid API key.", "invalid_api_key")
        if api_key.is_revoked:
            raise _fail("This API key has been revoked.", "revoked_api_key")
        now = timezone.now()
        if api_key.is_expired(now=now):
            raise _fail("This API key has expired.", "expired_api_key")
        if not api_key.owner.is_active:
            raise _fail("The account that owns this API key is disabled.", "inactive_account")
        self._touch(api_key, now)
        return api_key.owner, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    @staticmethod
    def _touch(api_key: ApiKey, now: datetime) -> None:
        # One write per key per resolution window instead of one per request.
        if verified_keys.should_touch(api_key.prefix) and cache.add(
            f"apikey-used:{api_key.pk}", 1, timeout=settings.API_KEY_LAST_USED_RESOLUTION_S
        ):
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
