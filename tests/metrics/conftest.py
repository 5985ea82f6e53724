"""Fixtures for /metrics: reading one sample out of a real scrape, and a tiny model of this package's own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from apps.chat.models import ModelEndpoint
from workers.runtime.tiny import make_tiny_model

torch.set_num_threads(1)

Scrape = Callable[..., float]


def scrape_text(client: Client, **headers: str) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return response.content.decode()


def sample_in(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` whose labels include ``labels`` (0 when the series does not exist yet)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture
def scrape() -> Scrape:
    """One sample of a fresh scrape of /metrics (from the loopback, which needs no token by default)."""
    client = Client()

    def read(name: str, **labels: str) -> float:
        return sample_in(scrape_text(client), name, **labels)

    return read


@pytest.fixture(scope="session")
def metered_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("metered") / "model", family="tigerbot")


@pytest.fixture
def metered(transactional_db: None, metered_model: Path) -> ModelEndpoint:
    """A random tiny model: it rarely says eos, so its answers run to max_new_tokens."""
    return ModelEndpoint.objects.create(
        name="metered", family="tigerbot", path=str(metered_model), max_new_tokens=2000, max_input_tokens=256
    )
