"""TigerBot's legacy /bot-service/ft/* routes, and a job trained by a real Celery worker over Redis."""

from __future__ import annotations

import json

import pytest

from apps.chat.models import ModelEndpoint
from tests.conftest import requires_redis

from .api_helpers import FAST_LEARNING, alpaca_jsonl, wait_for


@pytest.fixture
def base(transactional_db, identity_base) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="identity-base",
        family="tigerbot",
        path=str(identity_base),
        max_new_tokens=48,
        max_input_tokens=256,
        is_default=True,
    )


def _legacy(client, route: str, body: dict, *, multipart: bool = False) -> dict:
    response = client.post(f"/bot-service/ft/{route}", body, format="multipart" if multipart else "json")
    payload = response.json()
    assert set(payload) == {"code", "msg", "data"}
    return payload


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_legacy_flow(tenant, other_tenant, base, identity_examples):
    uploaded = _legacy(tenant.client, "upload_train_data", {"file": alpaca_jsonl(identity_examples)}, multipart=True)
    assert uploaded["code"] == 200
    started = _legacy(
        tenant.client,
        "start_train",
        {"fileId": uploaded["data"]["fileId"], "name": "legacy", "hyperparameters": json.dumps(FAST_LEARNING)},
    )
    ft_id = started["data"]["ftId"]
    assert wait_for(ft_id).status == "succeeded"
    listed = _legacy(tenant.client, "get_fine_tune_list", {})
    assert [item["finetune_id"] for item in listed["data"]["list"]] == [ft_id]
    question, answer = identity_examples[1]
    called = _legacy(tenant.client, "call", {"ftId": ft_id, "text": question})
    assert called["data"]["result"][0].strip() == answer
    assert _legacy(tenant.client, "offline", {"ftId": ft_id})["data"]["serviceStatus"] == "offline"
    assert _legacy(tenant.client, "call", {"ftId": ft_id, "text": question})["code"] == 409
    assert _legacy(tenant.client, "online", {"ftId": ft_id})["data"]["serviceStatus"] == "online"
    assert _legacy(other_tenant.client, "call", {"ftId": ft_id, "text": question})["code"] == 404
    bad = _legacy(tenant.client, "upload_train_data", {"file": alpaca_jsonl([])}, multipart=True)
    assert bad["code"] == 400 and bad["data"]["error"]["code"] == "empty_file"


@pytest.mark.redis
@requires_redis
def test_job_through_a_real_worker(celery_worker, tenant, base, identity_examples):
    response = tenant.client.post(
        "/v1/finetunes",
        {"name": "w", "file": alpaca_jsonl(identity_examples), "hyperparameters": json.dumps(FAST_LEARNING)},
        format="multipart",
    )
    job = wait_for(response.json()["finetune_id"])
    assert job.status == "succeeded", job.error
    question, answer = identity_examples[2]
    reply = tenant.client.post(f"/v1/finetunes/{job.id}/chat", {"query": question, "temperature": 0}, format="json")
    assert reply.json()["result"].strip() == answer
