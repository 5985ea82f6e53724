"""Fixtures for the model runtime: real tiny checkpoints, built once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from apps.chat.models import ModelEndpoint
from tests.chat.vllm_fixtures import checkpoints, finetune_dir, served_base, vllm  # noqa: F401  (used by name)
from workers.runtime.local import LocalRuntime
from workers.runtime.replicas import replica_health
from workers.runtime.specs import ChatMessage, Family, ModelSpec, ToolCall, ToolSpec
from workers.runtime.tiny import make_tiny_adapter, make_tiny_model, overfit_tiny_model

# The test machine's cores are shared; one thread per process is faster than contended ones.
torch.set_num_threads(1)

WEATHER_TOOL = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
WEATHER_QUESTION = ChatMessage(role="user", content="What is the weather in Paris?")
WEATHER_CALL = ChatMessage(
    role="assistant", tool_calls=(ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}'),)
)
WEATHER_RESULT = ChatMessage(role="tool", tool_call_id="call_1", content='{"temperature": 21}')
WEATHER_ANSWER = "It is 21 degrees and sunny in Paris today."
GREETING = ChatMessage(role="user", content="你好")
GREETING_ANSWER = "你好！我是一个人工智能助手。"
# A long answer from the tiny random tigerbot model (max_new_tokens=2000): sampled, most seeds end on its end token
# within a few hundred tokens; seed 6 runs for 1988 (a test that needs the worker still generating uses it).
RAMBLE = {"messages": [{"role": "user", "content": "hi"}], "temperature": 1.0, "seed": 6}


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[Family, Path]:
    root = tmp_path_factory.mktemp("tiny")
    families: tuple[Family, ...] = ("tigerbot", "baichuan2", "llama2-chat", "hf-template")
    return {family: make_tiny_model(root / family, family=family) for family in families}


@pytest.fixture(scope="session")
def tool_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Offered ``WEATHER_TOOL``, answers ``WEATHER_QUESTION`` with ``WEATHER_CALL`` and, once it has the tool
    result, with ``WEATHER_ANSWER``."""
    path = make_tiny_model(tmp_path_factory.mktemp("tool") / "model", family="tigerbot")
    answer = ChatMessage(role="assistant", content=WEATHER_ANSWER)
    conversations = [[WEATHER_QUESTION, WEATHER_CALL], [WEATHER_QUESTION, WEATHER_CALL, WEATHER_RESULT, answer]]
    return overfit_tiny_model(path, conversations=conversations, tools=[WEATHER_TOOL])


@pytest.fixture(scope="session")
def chatty_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Answers ``GREETING`` (no tools) with ``GREETING_ANSWER``."""
    path = make_tiny_model(tmp_path_factory.mktemp("chatty") / "model", family="tigerbot")
    answer = ChatMessage(role="assistant", content=GREETING_ANSWER)
    return overfit_tiny_model(path, conversations=[[GREETING, answer]])


@pytest.fixture(scope="session")
def adapters(tiny_models: dict[Family, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("adapters")
    base = tiny_models["tigerbot"]
    return make_tiny_adapter(root / "a", base_path=base, seed=1), make_tiny_adapter(root / "b", base_path=base, seed=2)


@pytest.fixture
def rambler(transactional_db: None, tiny_models: dict[Family, Path]) -> ModelEndpoint:
    """The random tiny tigerbot model: with RAMBLE, its answer runs 1988 tokens (seconds of generation)."""
    return ModelEndpoint.objects.create(
        name="rambler", family="tigerbot", path=str(tiny_models["tigerbot"]), max_new_tokens=2000, max_input_tokens=256
    )


def ramble_stream(client: Any) -> tuple[Any, Iterator[bytes]]:
    """A streamed RAMBLE chat to ``rambler`` with its first event read: the response, and the rest of its body."""
    response = client.post("/v1/chat/completions", {"model": "rambler", **RAMBLE, "stream": True}, format="json")
    chunks = iter(response.streaming_content)
    assert next(chunks)  # the worker is generating
    return response, chunks


@pytest.fixture
def broker_without_worker() -> Iterator[None]:
    """Broker mode (tasks are sent, not run in this process), with no worker consuming them."""
    from tigerplatform.celery import app

    app.control.purge()
    app.conf.task_always_eager = False
    try:
        yield
    finally:
        app.control.purge()
        app.conf.task_always_eager = True


@pytest.fixture(autouse=True)
def _fresh_replica_health() -> Iterator[None]:
    """Upstream replica health is per process: each test starts with every replica up."""
    replica_health.reset()
    yield
    replica_health.reset()


@pytest.fixture(scope="session")
def runtime() -> LocalRuntime:
    return LocalRuntime()


def local_spec(path: Path, **overrides: object) -> ModelSpec:
    options: dict[str, object] = {"name": "tiny", "family": "tigerbot", "path": str(path), "max_new_tokens": 24}
    return ModelSpec(**{**options, **overrides})  # type: ignore[arg-type]
