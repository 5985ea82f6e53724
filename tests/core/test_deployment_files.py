"""docker-compose.yml and the Makefile must point at code that exists."""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _queues(command: str) -> set[str]:
    argv = shlex.split(command)
    return set(argv[argv.index("-Q") + 1].split(","))


def test_compose_has_the_expected_services():
    services = _compose()["services"]
    assert {"postgres", "redis", "web", "worker-cpu", "worker-serve", "worker-train", "flower"} <= set(services)
    assert "healthcheck" in services["postgres"] and services["postgres"]["volumes"]
    for name in ("worker-serve", "worker-train", "vllm"):
        assert services[name]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_serving_never_shares_a_worker_or_a_gpu_with_jobs():
    services = _compose()["services"]
    assert _queues(services["worker-serve"]["command"]) == {"serve"}
    assert "-P threads" in services["worker-serve"]["command"]  # many requests feed one engine per model
    for name, service in services.items():
        if name != "worker-serve" and "-Q" in str(service.get("command", "")):
            assert "serve" not in _queues(service["command"]), name
    gpus = [
        services[name]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"]
        for name in ("worker-serve", "worker-train")
    ]
    assert gpus[0] != gpus[1]


def _check_command(argv: list[str]) -> None:
    if argv[0] == "gunicorn":
        module, attr = next(a for a in argv[1:] if ":" in a).split(":")
        assert hasattr(importlib.import_module(module), attr)
    elif argv[0] == "celery":
        app_module = argv[argv.index("-A") + 1]
        assert hasattr(importlib.import_module(f"{app_module}.celery"), "app")
        if "-Q" in argv:
            from tigerplatform.celery import app

            known = {queue.name for queue in app.conf.task_queues}
            assert set(argv[argv.index("-Q") + 1].split(",")) <= known
    elif argv[0] == "python":
        assert (ROOT / argv[1]).exists()
    else:
        raise AssertionError(f"unexpected command {argv}")


def test_every_service_command_points_at_code_that_exists():
    for service in _compose()["services"].values():
        command = service.get("command")
        if not command or "build" not in service:  # other images (vllm, minio, ...) take their own arguments
            continue
        argv = shlex.split(command) if isinstance(command, str) else command
        if argv[:2] == ["sh", "-c"]:
            for part in argv[2].split("&&"):
                _check_command(shlex.split(part))
        else:
            _check_command(argv)
    assert (ROOT / _compose()["services"]["web"]["build"]["dockerfile"]).exists()
