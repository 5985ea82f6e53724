"""Flower can revoke tasks and shows their arguments: the compose stack never runs it without a login, nor on
a public interface unless asked to."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _flower() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["flower"]


def test_flower_requires_basic_auth_credentials():
    # `${VAR:?message}`: compose refuses to start when FLOWER_BASIC_AUTH is unset or empty.
    assert re.search(r'--basic-auth="\$\{FLOWER_BASIC_AUTH:\?[^}]+\}"', _flower()["command"])


def test_flower_listens_on_loopback_by_default():
    assert _flower()["ports"] == ["${FLOWER_BIND:-127.0.0.1}:${FLOWER_PORT:-5555}:5555"]
