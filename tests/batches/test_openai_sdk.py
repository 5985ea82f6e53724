"""The official `openai` SDK drives the Batch API end to end against a live server (a real tiny model)."""

from __future__ import annotations

import json
import time

import openai
import pytest

from .conftest import GREETING_ANSWER, chat_line, jsonl

pytestmark = pytest.mark.django_db(transaction=True)


def _client(live_server, tenant) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0, timeout=60)


def _wait(client: openai.OpenAI, batch_id: str, timeout_s: float = 120) -> openai.types.Batch:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not finish")


def test_upload_create_poll_download(live_server, tenant, other_tenant, chatty, drain_tasks):
    client = _client(live_server, tenant)
    uploaded = client.files.create(
        file=("requests.jsonl", jsonl([chat_line("a"), "oops", chat_line("b")])), purpose="batch"
    )
    assert uploaded.purpose == "batch" and uploaded.object == "file"

    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"team": "search"}
    )
    assert batch.status == "validating" and batch.metadata == {"team": "search"}
    assert [b.id for b in client.batches.list()] == [batch.id]

    done = _wait(client, batch.id)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (3, 2, 1)
    assert done.usage.input_tokens > 0 and done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens

    output = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    assert [line["custom_id"] for line in output] == ["a", "b"]
    assert {line["response"]["body"]["choices"][0]["message"]["content"] for line in output} == {GREETING_ANSWER}
    errors = [json.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert [(e["error"]["code"], e["error"]["line"]) for e in errors] == [("invalid_json_line", 2)]
    assert {f.purpose for f in client.files.list()} == {"batch", "batch_output"}

    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)
    intruder = _client(live_server, other_tenant)
    for call in (
        lambda: intruder.batches.retrieve(batch.id),
        lambda: intruder.files.content(done.output_file_id),
        lambda: intruder.batches.cancel(batch.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="48h")  # type: ignore[arg-type]


def test_cancel_through_the_sdk(live_server, tenant, chatty, settings, drain_tasks):
    settings.BATCH_CONCURRENCY = 1
    client = _client(live_server, tenant)
    uploaded = client.files.create(file=("r.jsonl", jsonl([chat_line(str(i)) for i in range(300)])), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    while client.batches.retrieve(batch.id).request_counts.completed < 1:
        time.sleep(0.05)
    assert client.batches.cancel(batch.id).status == "cancelling"
    done = _wait(client, batch.id)
    assert done.status == "cancelled" and 1 <= done.request_counts.completed < 300
    assert len(client.files.content(done.output_file_id).text.splitlines()) == done.request_counts.completed
