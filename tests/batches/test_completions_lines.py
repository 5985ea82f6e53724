"""`/v1/completions` batches answer each line exactly as the endpoint does."""

from __future__ import annotations

import pytest

from apps.core.dispatch import wait_for_embedded_tasks

from .conftest import file_lines, jsonl, upload

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_completions_batch(tenant, chatty, drain_tasks):
    lines = [
        {
            "custom_id": "story",
            "method": "POST",
            "url": "/v1/completions",
            "body": {"model": "chatty", "prompt": "Once upon a time", "max_tokens": 5, "temperature": 0},
        },
        {
            "custom_id": "bad",
            "method": "POST",
            "url": "/v1/completions",
            "body": {"model": "chatty", "prompt": "x", "suffix": "y"},
        },
    ]
    input_file = upload(tenant.client, jsonl(lines)).json()["id"]
    batch = tenant.client.post(
        "/v1/batches",
        {"input_file_id": input_file, "endpoint": "/v1/completions", "completion_window": "24h"},
        format="json",
    ).json()
    wait_for_embedded_tasks()
    batch = tenant.client.get(f"/v1/batches/{batch['id']}").json()
    assert batch["status"] == "completed" and batch["request_counts"] == {"total": 2, "completed": 1, "failed": 1}

    [answered] = file_lines(tenant.client, batch["output_file_id"])
    direct = tenant.client.post("/v1/completions", lines[0]["body"], format="json").json()
    assert answered["response"]["body"]["choices"] == direct["choices"]
    assert answered["response"]["body"]["usage"] == direct["usage"]
    [refused] = file_lines(tenant.client, batch["error_file_id"])
    assert refused["response"]["body"]["error"]["param"] == "suffix"
