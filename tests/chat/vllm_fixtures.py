"""Fixtures shared by the tests that serve through the fake vLLM (``fake_vllm.py``): real tiny checkpoints (a base
and a LoRA adapter, no training), FINETUNE_DIR where vLLM mounts it, the server, and a base it serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.chat.models import ModelEndpoint
from apps.chat.services import model_endpoint_register
from tests.chat.fake_vllm import BASE_MODEL, FakeVLLM
from workers.runtime.tiny import make_tiny_adapter, make_tiny_model

VLLM_ADAPTERS = "/adapters"  # where the vLLM container mounts FINETUNE_DIR


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("vllm-checkpoints")
    base = make_tiny_model(root / "smol", family="hf-template")
    return base, make_tiny_adapter(root / "adapter", base_path=base)


@pytest.fixture
def finetune_dir(settings: Any, tmp_path: Path) -> Path:
    settings.FINETUNE_DIR = tmp_path / "finetunes"
    settings.VLLM_ADAPTER_ROOT = VLLM_ADAPTERS
    return settings.FINETUNE_DIR


@pytest.fixture
def vllm(finetune_dir: Path) -> Iterator[FakeVLLM]:
    with FakeVLLM(mounts={VLLM_ADAPTERS: finetune_dir}) as server:
        yield server


@pytest.fixture
def served_base(db: None, vllm: FakeVLLM, checkpoints: tuple[Path, Path]) -> ModelEndpoint:
    """A local checkpoint that vLLM serves: trainable here, answered there."""
    return model_endpoint_register(
        name="smol", family="hf-template", path=str(checkpoints[0]), serve_url=vllm.url, upstream_model=BASE_MODEL
    )
