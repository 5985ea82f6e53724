"""Who may read GET /metrics: the loopback by default, other networks only with METRICS_TOKEN."""

from __future__ import annotations

import pytest
from django.test import Client

OUTSIDE = "10.1.2.3"


@pytest.fixture
def client(db: None) -> Client:
    return Client()


def test_loopback_reads_the_metrics_without_a_token(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "# TYPE django_http_requests_latency_seconds_by_view_method histogram" in body
    assert "tigerplatform_progress_collector_up 1.0" in body


def test_another_network_is_refused_when_no_token_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "metrics_forbidden"


def test_another_network_needs_the_right_token(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics"
    missing = client.get("/metrics", REMOTE_ADDR=OUTSIDE)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "metrics_token_required"
    assert missing["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer s3cret-metricz")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_metrics_token"
    right = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer s3cret-metrics")
    assert right.status_code == 200
    assert "django_http_responses_total_by_status_view_method_total" in right.content.decode()


def test_a_wrong_token_is_refused_even_from_the_loopback(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert response.status_code == 401


def test_the_allowed_networks_are_configurable(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_CIDRS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_only_get_is_allowed(client):
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_metrics_are_not_in_the_openapi_schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/metrics" not in response.json()["paths"]
