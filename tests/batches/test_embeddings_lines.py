"""`/v1/embeddings` batches answer each line exactly as the endpoint does."""

from __future__ import annotations

import pytest

from apps.core.dispatch import wait_for_embedded_tasks
from apps.embeddings.services import embedding_models_register_bundled

from .conftest import file_lines, jsonl, upload

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_embeddings_batch(tenant, drain_tasks):
    embedding_models_register_bundled()
    lines = [
        {
            "custom_id": "cat",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"input": ["a cat", "a kitten"], "encoding_format": "float"},
        },
        {"custom_id": "empty", "method": "POST", "url": "/v1/embeddings", "body": {"input": ""}},
    ]
    input_file = upload(tenant.client, jsonl(lines)).json()["id"]
    batch = tenant.client.post(
        "/v1/batches",
        {"input_file_id": input_file, "endpoint": "/v1/embeddings", "completion_window": "24h"},
        format="json",
    ).json()
    wait_for_embedded_tasks()
    batch = tenant.client.get(f"/v1/batches/{batch['id']}").json()
    assert batch["status"] == "completed" and batch["request_counts"] == {"total": 2, "completed": 1, "failed": 1}

    [answered] = file_lines(tenant.client, batch["output_file_id"])
    direct = tenant.client.post("/v1/embeddings", lines[0]["body"], format="json").json()
    assert answered["response"]["body"] == direct
    [refused] = file_lines(tenant.client, batch["error_file_id"])
    assert refused["response"]["status_code"] == 400
    assert refused["response"]["body"]["error"]["param"] == "input"
