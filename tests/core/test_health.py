from __future__ import annotations

import pytest
from django.conf import settings

from tests.conftest import requires_redis, threaded_worker


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


@requires_redis
@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_until_a_serve_worker_is_alive(anon):
    import redis

    keys = redis.Redis.from_url(settings.REDIS_URL)
    for left in keys.scan_iter(match="tp:serve:worker:*"):
        keys.delete(left)  # a worker an earlier test killed leaves its key for up to its TTL
    with threaded_worker(queues=["default"], concurrency=1):  # a jobs worker only
        body = anon.get("/readyz").json()
        assert body["status"] == "unavailable"
        assert body["checks"]["serving"]["status"] == "fail"
        assert "no serve worker is alive" in body["checks"]["serving"]["detail"]
    with threaded_worker(queues=["serve"], concurrency=1) as worker:
        response = anon.get("/readyz")
        body = response.json()
        assert body["checks"]["serving"] == {**body["checks"]["serving"], "status": "ok", "detail": worker.hostname}
        assert response.status_code == 200, body
