from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages

from apps.accounts.keys import hash_key
from apps.accounts.models import AccountLimits, ApiKey


@pytest.fixture
def staff_client(client, db):
    admin = get_user_model().objects.create_superuser(username="root", password="pw-for-tests-only")
    client.force_login(admin)
    return client


def test_admin_requires_staff_login(client, db):
    response = client.get("/admin/accounts/apikey/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_creates_a_key_shown_once_and_revokes_it(staff_client, tenant):
    response = staff_client.post(
        "/admin/accounts/apikey/add/", {"owner": tenant.user.pk, "name": "from-admin", "rate_limit_per_minute": 30}
    )
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request) if "shown only now" in str(m)]
    plaintext = message.rsplit(" ", 1)[-1]
    api_key = ApiKey.objects.get(name="from-admin")
    assert api_key.key_hash == hash_key(plaintext) and api_key.prefix in plaintext

    shown = staff_client.get("/admin/accounts/apikey/")  # the page after the redirect shows the key once...
    assert plaintext.encode() in shown.content
    listing = staff_client.get("/admin/accounts/apikey/")  # ...and never again
    assert listing.status_code == 200 and b"from-admin" in listing.content
    assert plaintext.encode() not in listing.content

    staff_client.post("/admin/accounts/apikey/", {"action": "revoke_selected", "_selected_action": [api_key.pk]})
    api_key.refresh_from_db()
    assert api_key.is_revoked


def test_admin_sets_an_accounts_limit_on_the_users_page(staff_client, tenant):
    page = f"/admin/auth/user/{tenant.user.pk}/change/"
    shown = staff_client.get(page)
    assert shown.status_code == 200 and b"Account limits" in shown.content
    form = {
        "username": tenant.user.username,
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "limits-TOTAL_FORMS": "1",
        "limits-INITIAL_FORMS": "0",
        "limits-MIN_NUM_FORMS": "0",
        "limits-MAX_NUM_FORMS": "1",
        "limits-0-rate_limit_per_minute": "0",
        "limits-0-owner": tenant.user.pk,
    }
    refused = staff_client.post(page, form)
    assert refused.status_code == 200 and b"greater than or equal to 1" in refused.content
    assert not AccountLimits.objects.exists()

    response = staff_client.post(page, {**form, "limits-0-rate_limit_per_minute": "1"})
    assert response.status_code == 302
    assert AccountLimits.objects.get(owner=tenant.user).rate_limit_per_minute == 1
    assert tenant.client.get("/v1/models").status_code == 200
    assert tenant.client.get("/v1/models").status_code == 429
