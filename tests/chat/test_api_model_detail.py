"""``GET /v1/models/{id}``: the same models as ``GET /v1/models`` (platform chat and embedding models, the
caller's online fine-tuned models), one at a time, with ids that hold ``:``, ``/`` and ``.``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import openai
import pytest

from apps.chat.services import model_endpoint_register
from apps.embeddings.services import embedding_models_register_bundled
from apps.finetune.models import FineTunedModel, FineTuneJob, TrainingFile

ODD_ID = "ft:upstream-chat:team.v1.5/eu:1a2b3c4d"


def fine_tuned(owner: Any, name: str, *, online: bool = True) -> FineTunedModel:
    training_file = TrainingFile.objects.create(
        owner=owner, filename="d.jsonl", bytes=1, file="d.jsonl", format="alpaca", total=1, valid_count=1
    )
    job = FineTuneJob.objects.create(
        owner=owner, base_model="upstream-chat", training_file=training_file, status=FineTuneJob.Status.SUCCEEDED
    )
    return FineTunedModel.objects.create(
        name=name, owner=owner, job=job, base_model="upstream-chat", adapter_path="/nowhere", online=online
    )


@pytest.fixture
def catalogue(db: None, tenant: Any, other_tenant: Any) -> dict[str, FineTunedModel]:
    model_endpoint_register(
        name="upstream-chat",
        family="hf-template",
        backend="openai-upstream",
        base_url="http://vllm:8000/v1",
        upstream_model="Qwen/Qwen2.5-0.5B-Instruct",
    )
    embedding_models_register_bundled()
    return {
        "mine": fine_tuned(tenant.user, ODD_ID),
        "offline": fine_tuned(tenant.user, "ft:upstream-chat:alice:offline1", online=False),
        "theirs": fine_tuned(other_tenant.user, "ft:upstream-chat:bob:5e6f7a8b"),
    }


def test_every_listed_model_can_be_retrieved_and_reads_the_same(tenant: Any, catalogue: dict[str, Any]) -> None:
    listed = tenant.client.get("/v1/models").json()["data"]
    assert {m["id"] for m in listed} == {"upstream-chat", "all-minilm-l6-v2", "multilingual-e5-small", ODD_ID}
    for model in listed:
        response = tenant.client.get(f"/v1/models/{quote(model['id'], safe='')}")
        assert response.status_code == 200, response.json()
        assert response.json() == model
        assert set(model) == {"id", "object", "created", "owned_by"} and model["object"] == "model"
    # Unescaped, as curl would send it: the id's "/" is part of the id, not another path segment.
    assert tenant.client.get(f"/v1/models/{ODD_ID}").json()["owned_by"] == "user:alice"
    assert tenant.client.get("/v1/models/all-minilm-l6-v2").json()["owned_by"] == "sentence-transformers"


@pytest.mark.parametrize(
    "model_id",
    [
        "nope",
        "ft:upstream-chat:bob:5e6f7a8b",
        "ft:upstream-chat:alice:offline1",
        "upstream-chat/extra",
        "ft:upstream-chat:team.v1.5",
    ],
)
def test_other_ids_are_404_model_not_found(tenant: Any, catalogue: dict[str, Any], model_id: str) -> None:
    response = tenant.client.get(f"/v1/models/{quote(model_id, safe='')}")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": f"The model {model_id!r} does not exist or you do not have access to it.",
        "type": "not_found_error",
        "param": "model",
        "code": "model_not_found",
    }


def test_the_owner_of_a_fine_tuned_model_is_the_only_one_who_sees_it(
    tenant: Any, other_tenant: Any, catalogue: dict[str, Any]
) -> None:
    theirs = "ft:upstream-chat:bob:5e6f7a8b"
    assert other_tenant.client.get(f"/v1/models/{theirs}").status_code == 200
    assert other_tenant.client.get(f"/v1/models/{quote(ODD_ID, safe='')}").status_code == 404


def test_retrieving_needs_an_api_key(anon: Any, catalogue: dict[str, Any]) -> None:
    assert anon.get("/v1/models/upstream-chat").json()["error"]["code"] == "missing_api_key"


@pytest.mark.django_db(transaction=True)
def test_the_openai_sdk_retrieves_models(
    live_server: Any, tenant: Any, other_tenant: Any, catalogue: dict[str, Any]
) -> None:
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0)
    model = client.models.retrieve(ODD_ID)
    assert (model.id, model.object, model.owned_by) == (ODD_ID, "model", "user:alice")
    assert client.models.retrieve("all-minilm-l6-v2").id == "all-minilm-l6-v2"
    assert [m.id for m in client.models.list()] == [m["id"] for m in tenant.client.get("/v1/models").json()["data"]]
    with pytest.raises(openai.NotFoundError) as error:
        client.models.retrieve("ft:upstream-chat:bob:5e6f7a8b")
    assert error.value.body["code"] == "model_not_found"
