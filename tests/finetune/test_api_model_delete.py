"""``DELETE /v1/models/{id}``: a caller deletes their own fine-tuned models, never anyone else's nor a platform
model. A deleted model leaves lists and chat at once, its LoRA adapter is unloaded from the vLLM serving its
base and its weights are removed from disk; its job stays and still names it. vLLM is the fake in
tests/chat/fake_vllm.py; the base and the adapter are real tiny checkpoints (no training)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import openai
import pytest
from django.db import transaction

from apps.chat.models import ModelEndpoint
from apps.embeddings.services import embedding_models_register_bundled
from apps.finetune.models import FineTuneCheckpoint, FineTunedModel, FineTuneJob, TrainingFile
from apps.finetune.services.deployment import fine_tuned_model_delete
from tests.chat.fake_vllm import FakeVLLM, answer

QUESTION = "Who are you?"


def make_fine_tuned(owner: Any, name: str, *, finetune_dir: Path, adapter: Path) -> FineTunedModel:
    """A succeeded job and its online LoRA model, as training would leave them (adapter and a listed checkpoint)."""
    training_file = TrainingFile.objects.create(
        owner=owner, filename="d.jsonl", bytes=1, file="d.jsonl", format="alpaca", total=1, valid_count=1
    )
    job = FineTuneJob.objects.create(
        owner=owner, base_model="smol", status=FineTuneJob.Status.SUCCEEDED, training_file=training_file
    )
    output = finetune_dir / job.id / "output"
    shutil.copytree(adapter, output)
    shutil.copytree(adapter, output / "checkpoint-10")
    FineTuneCheckpoint.objects.create(job=job, step=10, path=str(output / "checkpoint-10"), metrics={"loss": 1.5})
    return FineTunedModel.objects.create(
        name=name, owner=owner, job=job, base_model="smol", adapter_path=str(output), online=False
    )


@pytest.fixture
def mine(tenant: Any, served_base: ModelEndpoint, finetune_dir: Path, checkpoints: tuple[Path, Path]) -> FineTunedModel:
    model = make_fine_tuned(tenant.user, "ft:smol:alice:1a2b3c4d", finetune_dir=finetune_dir, adapter=checkpoints[1])
    response = tenant.client.post(f"/v1/finetunes/{model.job_id}/online")
    assert response.status_code == 200, response.json()
    return model


@pytest.fixture
def theirs(
    other_tenant: Any, served_base: ModelEndpoint, finetune_dir: Path, checkpoints: tuple[Path, Path]
) -> FineTunedModel:
    return make_fine_tuned(other_tenant.user, "ft:smol:bob:5e6f7a8b", finetune_dir=finetune_dir, adapter=checkpoints[1])


def chat(tenant: Any, model: str) -> Any:
    return tenant.client.post(
        "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": QUESTION}]}, format="json"
    )


def listed(tenant: Any) -> set[str]:
    return {m["id"] for m in tenant.client.get("/v1/models").json()["data"]}


def checkpoints_listed(tenant: Any, job_id: str) -> list[str]:
    response = tenant.client.get(f"/v1/fine_tuning/jobs/{job_id}/checkpoints")
    assert response.status_code == 200, response.json()
    return [c["fine_tuned_model_checkpoint"] for c in response.json()["data"]]


def test_deleting_a_fine_tuned_model(
    tenant: Any, mine: FineTunedModel, vllm: FakeVLLM, django_capture_on_commit_callbacks: Any
) -> None:
    adapter = Path(mine.adapter_path)
    assert chat(tenant, mine.name).json()["choices"][0]["message"]["content"] == answer(mine.name, QUESTION)
    assert mine.name in vllm.loras and mine.name in listed(tenant)
    assert checkpoints_listed(tenant, mine.job_id) == [f"{mine.job_id}:step-10"]
    assert (adapter / "checkpoint-10").is_dir()

    with django_capture_on_commit_callbacks(execute=True):
        response = tenant.client.delete(f"/v1/models/{mine.name}")
    assert response.status_code == 200, response.json()
    assert response.json() == {"id": mine.name, "object": "model", "deleted": True}

    assert vllm.loras == {} and len(vllm.calls_to("/v1/unload_lora_adapter")) == 1
    assert not adapter.exists() and adapter.parent.exists()  # the job's prepared data stays
    # The checkpoints were in the weights directory: they are gone, and no longer listed.
    assert checkpoints_listed(tenant, mine.job_id) == []
    assert mine.name not in listed(tenant)
    assert tenant.client.get(f"/v1/models/{mine.name}").status_code == 404
    error = chat(tenant, mine.name).json()["error"]
    assert (error["code"], error["param"], error["type"]) == ("model_not_found", "model", "not_found_error")
    # The job is history: it still names the model it produced.
    job = tenant.client.get(f"/v1/fine_tuning/jobs/{mine.job_id}").json()
    assert (job["status"], job["fine_tuned_model"]) == ("succeeded", mine.name)
    tigerbot = tenant.client.get(f"/v1/finetunes/{mine.job_id}").json()
    assert (tigerbot["service_status"], tigerbot["available"]) == ("deleted", False)
    events = [e["message"] for e in tenant.client.get(f"/v1/fine_tuning/jobs/{mine.job_id}/events").json()["data"]]
    assert f"Fine-tuned model {mine.name} deleted." in events
    # It cannot come back, through any route.
    for route in (f"/v1/finetunes/{mine.job_id}/online", f"/v1/finetunes/{mine.job_id}/chat"):
        response = tenant.client.post(route, {"query": QUESTION}, format="json")
        assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    second = tenant.client.delete(f"/v1/models/{mine.name}")
    assert second.status_code == 404 and second.json()["error"]["code"] == "model_not_found"


def test_an_offline_model_can_be_deleted_too(
    tenant: Any,
    served_base: ModelEndpoint,
    finetune_dir: Path,
    checkpoints: tuple[Path, Path],
    django_capture_on_commit_callbacks: Any,
) -> None:
    model = make_fine_tuned(tenant.user, "ft:smol:alice:0ff11e00", finetune_dir=finetune_dir, adapter=checkpoints[1])
    with django_capture_on_commit_callbacks(execute=True):
        assert tenant.client.delete(f"/v1/models/{model.name}").json()["deleted"] is True
    assert not Path(model.adapter_path).exists()


def test_nobody_deletes_what_they_do_not_own(
    tenant: Any, other_tenant: Any, mine: FineTunedModel, theirs: FineTunedModel, vllm: FakeVLLM
) -> None:
    embedding_models_register_bundled()
    # Platform models: visible, not theirs to delete.
    for model_id in ("smol", "all-minilm-l6-v2", "multilingual-e5-small"):
        response = tenant.client.delete(f"/v1/models/{model_id}")
        assert response.status_code == 403
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == ("permission_error", "model_not_deletable", "model")
    for model_id in (theirs.name, "nope", "ft:smol:alice"):  # another tenant's model does not exist for them
        response = tenant.client.delete(f"/v1/models/{model_id}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    assert other_tenant.client.delete(f"/v1/models/{mine.name}").status_code == 404
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert not mine.is_deleted and not theirs.is_deleted and Path(theirs.adapter_path).exists()
    assert checkpoints_listed(tenant, mine.job_id) == [f"{mine.job_id}:step-10"]
    assert checkpoints_listed(other_tenant, theirs.job_id) == [f"{theirs.job_id}:step-10"]
    assert ModelEndpoint.objects.filter(name="smol").exists()
    assert vllm.calls_to("/v1/unload_lora_adapter") == []
    assert chat(tenant, mine.name).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_deletion_that_rolls_back_leaves_everything_as_it_was(
    tenant: Any, mine: FineTunedModel, vllm: FakeVLLM
) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        fine_tuned_model_delete(model=mine)
        raise RuntimeError("the caller's transaction failed")
    mine.refresh_from_db()
    assert not mine.is_deleted and mine.online and Path(mine.adapter_path).exists()
    assert checkpoints_listed(tenant, mine.job_id) == [f"{mine.job_id}:step-10"]
    assert mine.name in vllm.loras and vllm.calls_to("/v1/unload_lora_adapter") == []


def test_weights_outside_the_finetune_dir_are_left_alone(
    tenant: Any,
    served_base: ModelEndpoint,
    finetune_dir: Path,
    checkpoints: tuple[Path, Path],
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    model = make_fine_tuned(tenant.user, "ft:smol:alice:e1sewh3r", finetune_dir=finetune_dir, adapter=checkpoints[1])
    elsewhere = tmp_path / "imported-adapter"
    shutil.copytree(checkpoints[1], elsewhere)
    FineTunedModel.objects.filter(pk=model.pk).update(adapter_path=str(elsewhere))
    with django_capture_on_commit_callbacks(execute=True):
        assert tenant.client.delete(f"/v1/models/{model.name}").status_code == 200
    assert elsewhere.exists()


@pytest.mark.django_db(transaction=True)
def test_the_openai_sdk_deletes_a_fine_tuned_model(
    live_server: Any, tenant: Any, mine: FineTunedModel, vllm: FakeVLLM
) -> None:
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0)
    assert client.models.retrieve(mine.name).owned_by == "user:alice"
    deleted = client.models.delete(mine.name)
    assert (deleted.id, deleted.object, deleted.deleted) == (mine.name, "model", True)
    assert vllm.loras == {} and not Path(mine.adapter_path).exists()
    assert mine.name not in [m.id for m in client.models.list()]
    with pytest.raises(openai.NotFoundError):
        client.models.delete(mine.name)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=mine.name, messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.PermissionDeniedError):
        client.models.delete("smol")
