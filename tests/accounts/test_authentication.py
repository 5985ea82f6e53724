from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import ApiKey


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.django_db
class TestUnauthorized:
    def test_missing_key(self, anon):
        response = anon.get("/v1/models")
        assert response.status_code == 401
        assert _error(response)["code"] == "missing_api_key"
        assert "Bearer" in _error(response)["message"]
        assert response["WWW-Authenticate"].startswith("Bearer")

    @pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz"])
    def test_malformed_header(self, anon, header):
        response = anon.get("/v1/models", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401
        assert _error(response)["code"] == "malformed_authorization"

    @pytest.mark.parametrize("key", ["sk-123", "tb-zzzzzzzzzzzz.abc", "tb-0123456789ab"])
    def test_malformed_key(self, anon, key):
        response = anon.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 401
        assert _error(response)["code"] == "malformed_api_key"

    def test_unknown_key(self, anon):
        key = "tb-0123456789ab." + "A" * 43
        response = anon.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code == 401
        assert _error(response)["code"] == "invalid_api_key"

    def test_right_prefix_wrong_secret(self, tenant, anon):
        forged = tenant.key[:-3] + ("AAA" if not tenant.key.endswith("AAA") else "BBB")
        response = anon.get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {forged}")
        assert response.status_code == 401
        assert _error(response)["code"] == "invalid_api_key"

    def test_revoked_key(self, tenant):
        call_command("revoke_api_key", f"tb-{tenant.api_key.prefix}")
        response = tenant.client.get("/v1/models")
        assert response.status_code == 401
        assert _error(response)["code"] == "revoked_api_key"

    def test_expired_key(self, tenant):
        ApiKey.objects.filter(pk=tenant.api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        response = tenant.client.get("/v1/models")
        assert response.status_code == 401
        assert _error(response)["code"] == "expired_api_key"

    def test_disabled_account(self, tenant):
        tenant.user.is_active = False
        tenant.user.save()
        response = tenant.client.get("/v1/models")
        assert response.status_code == 401
        assert _error(response)["code"] == "inactive_account"


@pytest.mark.django_db
def test_valid_key_is_accepted_and_last_used_is_recorded_once_per_window(tenant):
    assert tenant.client.get("/v1/models").status_code == 200
    first = ApiKey.objects.get(pk=tenant.api_key.pk).last_used_at
    assert first is not None
    assert tenant.client.get("/v1/models").status_code == 200
    assert ApiKey.objects.get(pk=tenant.api_key.pk).last_used_at == first  # no write on every request


@pytest.mark.django_db
def test_key_is_never_stored_in_plaintext(tenant):
    from django.db import connection

    secret = tenant.key.split(".", 1)[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apikey")
        rows = cursor.fetchall()
    flat = " ".join(str(value) for row in rows for value in row)
    assert tenant.api_key.prefix in flat
    assert tenant.key not in flat and secret not in flat
    import hashlib

    assert hashlib.sha256(tenant.key.encode()).hexdigest() in flat


@pytest.mark.django_db
def test_revocation_by_another_process_reaches_this_one(tenant):
    """Another process revokes (a bare DB write plus an epoch bump): our cached verification must not survive."""
    from apps.accounts.keycache import _Epoch

    assert tenant.client.get("/v1/models").status_code == 200  # now cached in this process
    ApiKey.objects.filter(pk=tenant.api_key.pk).update(revoked_at=timezone.now())  # no signal in this process
    assert tenant.client.get("/v1/models").status_code == 200  # still the cached verification...
    _Epoch().bump()  # ...until the other process's change bumps the shared epoch
    response = tenant.client.get("/v1/models")
    assert response.status_code == 401
    assert _error(response)["code"] == "revoked_api_key"
