"""Fixtures for the Batch API: a real tiny chat model, batch files, and polling a batch to its end."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apps.batches.models import Batch
from apps.chat.models import ModelEndpoint
from apps.core.dispatch import wait_for_embedded_tasks
from tests.chat.conftest import GREETING_ANSWER, chatty_model  # noqa: F401 (a fixture, used by name)
from tests.conftest import threaded_worker

__all__ = ["GREETING_ANSWER"]


@pytest.fixture
def chatty(db: None, chatty_model: Path) -> ModelEndpoint:  # noqa: F811
    return ModelEndpoint.objects.create(
        name="chatty",
        family="tigerbot",
        path=str(chatty_model),
        is_default=True,
        max_new_tokens=32,
        max_input_tokens=256,
    )


def chat_line(custom_id: str, content: str = "你好", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "chatty", "messages": [{"role": "user", "content": content}], "temperature": 0, **body},
    }


def jsonl(lines: list[dict[str, Any] | str]) -> bytes:
    return "".join(
        (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines
    ).encode()


def upload(client: Any, content: bytes, *, name: str = "batch.jsonl", purpose: str = "batch") -> Any:
    handle = io.BytesIO(content)
    handle.name = name
    return client.post("/v1/files", {"file": handle, "purpose": purpose}, format="multipart")


def create_batch(client: Any, lines: list[dict[str, Any] | str], **fields: Any) -> dict[str, Any]:
    uploaded = upload(client, jsonl(lines))
    assert uploaded.status_code == 201, uploaded.json()
    body = {
        "input_file_id": uploaded.json()["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **fields,
    }
    created = client.post("/v1/batches", body, format="json")
    assert created.status_code == 200, created.json()
    return created.json()


def wait_for_batch(
    batch_id: str, *, statuses: tuple[str, ...] = tuple(Batch.TERMINAL), timeout_s: float = 300
) -> Batch:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = Batch.objects.get(pk=batch_id)
        if batch.status in statuses:
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} still {Batch.objects.get(pk=batch_id).status} after {timeout_s} s")


def file_lines(client: Any, file_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/files/{file_id}/content")
    assert response.status_code == 200
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


@pytest.fixture
def drain_tasks() -> Iterator[None]:
    """Background (embedded) tasks a test started finish before its database goes away."""
    yield
    wait_for_embedded_tasks(timeout_s=120)


@pytest.fixture
def batch_worker(transactional_db: None) -> Iterator[Any]:
    """A real Celery worker on Redis taking the `batch` and `serve` queues (threads), as `make run`'s workers do."""
    with threaded_worker(queues=["default", "serve", "batch"], concurrency=4) as worker:
        yield worker
