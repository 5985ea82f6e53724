from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient


def _create(*args: str) -> str:
    out = io.StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip().splitlines()[-1]


@pytest.mark.django_db
def test_create_and_revoke_round_trip():
    key = _create("--user", "carol", "--create-user", "--staff", "--name", "ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/v1/models").status_code == 200

    call_command("revoke_api_key", key, stdout=io.StringIO())
    assert client.get("/v1/models").status_code == 401


@pytest.mark.django_db
def test_create_for_unknown_user_needs_create_user_flag():
    with pytest.raises(CommandError, match="--create-user"):
        _create("--user", "nobody")


@pytest.mark.django_db
def test_revoke_unknown_prefix_fails_cleanly():
    with pytest.raises(CommandError, match="No API key"):
        call_command("revoke_api_key", "tb-000000000000")


@pytest.mark.django_db
def test_staff_flag_gives_admin_login():
    from django.contrib.auth import get_user_model

    _create("--user", "dave", "--create-user", "--staff")
    user = get_user_model().objects.get(username="dave")
    assert user.is_staff and user.is_superuser


@pytest.mark.django_db
def test_account_rate_limit_flag_caps_all_of_the_users_keys():
    first = _create("--user", "erin", "--create-user", "--account-rate-limit", "2")
    second = _create("--user", "erin")
    clients = []
    for key in (first, second):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        clients.append(client)
    assert [client.get("/v1/models").status_code for client in (*clients, clients[0])] == [200, 200, 429]

    with pytest.raises(CommandError, match="--account-rate-limit must be positive"):
        _create("--user", "erin", "--account-rate-limit", "0")
