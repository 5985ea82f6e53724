from __future__ import annotations

import pytest
from django.conf import settings


def test_healthz(anon):
    response = anon.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_each_dependency(anon):
    body = anon.get("/readyz").json()
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "ok"
    if settings.REDIS_URL:
        assert body["checks"]["broker"]["status"] == "ok"
        assert "workers" in body["checks"]  # no worker runs in this test: reported, and not ready
        assert body["checks"]["workers"]["status"] == "fail"
        assert body["status"] == "unavailable"
    else:
        assert set(body["checks"]) == {"database", "cache"}
        assert body["status"] == "ok"


@pytest.mark.django_db
def test_readyz_is_503_when_a_dependency_fails(anon, monkeypatch):
    from apps.core import health

    def broken() -> str:
        raise ConnectionError("database is down")

    monkeypatch.setattr(health, "_database", broken)
    response = anon.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "fail"
    assert "database is down" in response.json()["checks"]["database"]["detail"]


def test_unknown_route_is_json_404(anon):
    response = anon.get("/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_wrong_method_is_405_json(tenant):
    response = tenant.client.put("/v1/models", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
