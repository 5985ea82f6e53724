"""The compose monitoring stack points at what the platform serves: Prometheus scrapes the web's /metrics with
the token and the workers' METRICS_PORT, and every metric the Grafana dashboard queries exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def test_prometheus_scrapes_the_web_with_the_token_and_each_worker_port():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for mount in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
        source = mount.split(":")[0]
        assert source in ("prometheusdata", "grafanadata") or (ROOT / source).exists(), mount
    port = services["worker-serve"]["environment"]["METRICS_PORT"]
    assert services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"] in services["web"]["tmpfs"]

    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["web"]["metrics_path"] == "/metrics"
    assert jobs["web"]["authorization"]["credentials_file"] in " ".join(services["prometheus"]["entrypoint"])
    assert jobs["web"]["static_configs"][0]["targets"] == ["web:8000"]
    workers = set(jobs["workers"]["static_configs"][0]["targets"])
    assert workers == {f"{name}:{port}" for name in services if name.startswith("worker-")}


def test_every_metric_on_the_dashboard_is_exposed(db):
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/tigerplatform.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(?:tigerplatform|django)_[a-z_]+", target["expr"])
    }
    body = Client().get("/metrics").content.decode()
    exposed = set(re.findall(r"^# TYPE (\S+)", body, flags=re.MULTILINE))
    # A histogram's TYPE line names its family; its series add these suffixes.
    suffixes = ("_bucket", "_count", "_sum")
    missing = {
        name
        for name in queried
        if name not in exposed and not (name.endswith(suffixes) and name.rsplit("_", 1)[0] in exposed)
    }
    assert queried and not missing, missing
