"""A backing service that cannot be reached (Redis or PostgreSQL restarting) is a 503 to retry, never a 500."""

from __future__ import annotations

import pytest
import redis
from django.db import OperationalError

from apps.accounts import keycache


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("Error 111 connecting. Connection refused."),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        OperationalError("server closed the connection unexpectedly"),
    ],
)
def test_an_unreachable_backing_service_is_a_503_with_retry_after(tenant, monkeypatch, error):
    def unreachable(self):
        raise error

    monkeypatch.setattr(keycache._Epoch, "read", unreachable)  # the first backing-service call of every request
    response = tenant.client.get("/v1/models")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"
