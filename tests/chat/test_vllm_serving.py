"""Serving through vLLM, end to end through the API: upstream models answered from the web process (no serve
worker, even with a broker), local checkpoints served by vLLM (``serve_url``) and their fine-tuned LoRA
adapters loaded into it when they go online. vLLM is the fake in fake_vllm.py (vLLM needs a GPU); the base
model and the adapter are real tiny checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from apps.chat.models import ModelEndpoint
from apps.chat.selectors import chat_model_get, serving_spec
from apps.chat.services import model_endpoint_register
from apps.finetune.models import FineTunedModel, FineTuneJob, TrainingFile
from apps.finetune.services.jobs import finetune_job_create
from tests.chat.fake_vllm import BASE_MODEL, FakeVLLM, answer
from tests.chat.vllm_fixtures import VLLM_ADAPTERS
from workers.errors import DomainError
from workers.runtime.replicas import replica_health

QUESTION = "Who are you?"


@pytest.fixture
def no_worker(settings: Any, broker_without_worker: None) -> None:
    """Broker mode with no serve worker: anything sent to the serve queue would time out (504)."""
    settings.CHAT_TASK_TIMEOUT_S = 1
    settings.CHAT_STREAM_FIRST_TIMEOUT_S = 1


@pytest.fixture
def fine_tuned(
    tenant: Any, served_base: ModelEndpoint, finetune_dir: Path, checkpoints: tuple[Path, Path]
) -> FineTunedModel:
    job = FineTuneJob.objects.create(
        owner=tenant.user,
        base_model="smol",
        status=FineTuneJob.Status.SUCCEEDED,
        training_file=TrainingFile.objects.create(
            owner=tenant.user, filename="d.jsonl", bytes=1, file="d.jsonl", format="alpaca", total=1, valid_count=1
        ),
    )
    adapter = finetune_dir / job.id / "output"
    shutil.copytree(checkpoints[1], adapter)
    return FineTunedModel.objects.create(
        name="ft:smol:alice:1", owner=tenant.user, job=job, base_model="smol", adapter_path=str(adapter), online=False
    )


def chat(tenant: Any, model: str, *, stream: bool = False) -> Any:
    body = {"model": model, "messages": [{"role": "user", "content": QUESTION}], "stream": stream}
    return tenant.client.post("/v1/chat/completions", body, format="json")


def streamed_text(response: Any) -> str:
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    events = [json.loads(line[6:]) for line in body.split("\n\n") if line.startswith("data: {")]
    assert not [e for e in events if "error" in e], events
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))


def test_upstream_models_answer_without_a_serve_worker(tenant: Any, vllm: FakeVLLM, no_worker: None) -> None:
    model_endpoint_register(
        name="smol-up", family="hf-template", backend="openai-upstream", base_url=vllm.url, upstream_model=BASE_MODEL
    )
    response = chat(tenant, "smol-up")
    assert response.status_code == 200, response.json()
    assert response.json()["choices"][0]["message"]["content"] == answer(BASE_MODEL, QUESTION)
    assert streamed_text(chat(tenant, "smol-up", stream=True)) == answer(BASE_MODEL, QUESTION)
    assert [c.body["model"] for c in vllm.chat_calls()] == [BASE_MODEL, BASE_MODEL]


def test_a_checkpoint_served_by_vllm_is_answered_there_and_can_still_be_fine_tuned(
    tenant: Any, served_base: ModelEndpoint, vllm: FakeVLLM, no_worker: None
) -> None:
    response = chat(tenant, "smol")
    assert response.status_code == 200, response.json()
    assert response.json()["choices"][0]["message"]["content"] == answer(BASE_MODEL, QUESTION)
    assert len(vllm.chat_calls()) == 1

    training_file = TrainingFile.objects.create(
        owner=tenant.user, filename="d.jsonl", bytes=1, file="d.jsonl", format="alpaca", total=1, valid_count=1
    )
    job = finetune_job_create(owner=tenant.user, training_file=training_file, model="smol")
    assert job.base_model == "smol"
    model_endpoint_register(name="smol-up", family="hf-template", backend="openai-upstream", base_url=vllm.url)
    with pytest.raises(DomainError) as error:
        finetune_job_create(owner=tenant.user, training_file=training_file, model="smol-up")
    assert error.value.code == "model_not_trainable"


def test_a_lora_adapter_goes_online_in_vllm_and_offline_again(
    tenant: Any, fine_tuned: FineTunedModel, vllm: FakeVLLM, no_worker: None
) -> None:
    job_id = fine_tuned.job_id
    response = tenant.client.post(f"/v1/finetunes/{job_id}/online")
    assert response.status_code == 200, response.json()
    assert response.json()["available"] is True
    assert vllm.loras == {fine_tuned.name: f"{VLLM_ADAPTERS}/{job_id}/output"}

    response = chat(tenant, fine_tuned.name)
    assert response.status_code == 200, response.json()
    assert response.json()["choices"][0]["message"]["content"] == answer(fine_tuned.name, QUESTION)
    assert streamed_text(chat(tenant, fine_tuned.name, stream=True)) == answer(fine_tuned.name, QUESTION)
    finetune_chat = tenant.client.post(f"/v1/finetunes/{job_id}/chat", {"query": QUESTION}, format="json")
    assert finetune_chat.status_code == 200, finetune_chat.json()
    assert finetune_chat.json()["result"] == answer(fine_tuned.name, QUESTION)
    assert len(vllm.calls_to("/v1/load_lora_adapter")) == 1

    response = tenant.client.post(f"/v1/finetunes/{job_id}/offline")
    assert response.status_code == 200 and response.json()["available"] is False
    assert vllm.loras == {}
    assert chat(tenant, fine_tuned.name).json()["error"]["code"] == "model_offline"


def test_an_adapter_vllm_restarted_without_is_loaded_again_on_the_next_request(
    tenant: Any, fine_tuned: FineTunedModel, vllm: FakeVLLM
) -> None:
    assert tenant.client.post(f"/v1/finetunes/{fine_tuned.job_id}/online").status_code == 200
    vllm.restart()
    response = chat(tenant, fine_tuned.name)
    assert response.status_code == 200, response.json()
    assert response.json()["choices"][0]["message"]["content"] == answer(fine_tuned.name, QUESTION)
    assert len(vllm.calls_to("/v1/load_lora_adapter")) == 2


def test_an_adapter_vllm_cannot_load_keeps_the_model_offline(
    tenant: Any, fine_tuned: FineTunedModel, vllm: FakeVLLM, settings: Any
) -> None:
    settings.VLLM_ADAPTER_ROOT = "/elsewhere"  # a path vLLM cannot read
    response = tenant.client.post(f"/v1/finetunes/{fine_tuned.job_id}/online")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "adapter_load_failed" and "No adapter found for /elsewhere/" in error["message"]
    fine_tuned.refresh_from_db()
    assert fine_tuned.online is False

    settings.VLLM_ADAPTER_ROOT = VLLM_ADAPTERS
    vllm.runtime_lora = False
    response = tenant.client.post(f"/v1/finetunes/{fine_tuned.job_id}/online")
    assert response.status_code == 502
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in response.json()["error"]["message"]
    fine_tuned.refresh_from_db()
    assert fine_tuned.online is False


def test_full_fine_tuned_weights_on_a_served_base_run_here(
    tenant: Any, served_base: ModelEndpoint, checkpoints: tuple[Path, Path]
) -> None:
    from apps.finetune.models import FineTunedModel
    from apps.finetune.selectors import fine_tuned_model_spec

    base = chat_model_get(user=tenant.user, model="smol").spec
    assert serving_spec(spec=base).backend == "openai-upstream"
    weights = str(checkpoints[0].parent / "full")
    model = FineTunedModel(name="ft:smol:alice:2", owner=tenant.user, base_model="smol", weights_path=weights)
    full = fine_tuned_model_spec(model=model)
    assert (full.path, full.backend) == (weights, "local")
    assert serving_spec(spec=full) == full  # the vLLM of the base does not serve these weights


def test_replicas_and_serve_url_load_from_models_json(db: None, tmp_path: Path, checkpoints: tuple[Path, Path]) -> None:
    config = tmp_path / "models.json"
    config.write_text(
        json.dumps(
            [
                {
                    "name": "qwen-vllm",
                    "family": "hf-template",
                    "backend": "openai-upstream",
                    "base_url": "http://vllm:8000/v1",
                    "replica_urls": ["http://vllm-2:8000/v1", "http://vllm-3:8000/v1"],
                    "upstream_model": "Qwen/Qwen2.5-7B-Instruct",
                },
                {
                    "name": "smol",
                    "family": "hf-template",
                    "path": str(checkpoints[0]),
                    "serve_url": "http://vllm:8000/v1",
                    "upstream_model": BASE_MODEL,
                },
            ]
        )
    )
    call_command("load_models", str(config))
    upstream = chat_model_get(user=None, model="qwen-vllm").spec  # type: ignore[arg-type]
    assert (upstream.base_url, upstream.replica_urls) == (
        "http://vllm:8000/v1",
        ("http://vllm-2:8000/v1", "http://vllm-3:8000/v1"),
    )
    served = serving_spec(spec=chat_model_get(user=None, model="smol").spec)  # type: ignore[arg-type]
    assert (served.backend, served.base_url, served.upstream_model) == (
        "openai-upstream",
        "http://vllm:8000/v1",
        BASE_MODEL,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"backend": "openai-upstream", "base_url": "http://vllm:8000/v1", "serve_url": "http://vllm:8000/v1"},
            "Only a local model has a serve_url",
        ),
        (
            {"backend": "openai-upstream", "base_url": "http://vllm:8000/v1", "replica_urls": "http://vllm-2:8000/v1"},
            "JSON list of base URLs",
        ),
        (
            {"backend": "openai-upstream", "base_url": "http://vllm:8000/v1", "replica_urls": ["vllm-2:8000"]},
            r"not an http\(s\) URL",
        ),
        ({"path": "smol", "replica_urls": ["http://vllm-2:8000/v1"]}, "Replicas need a base_url"),
    ],
)
def test_invalid_replica_settings_are_refused(db: None, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        model_endpoint_register(name="bad", family="hf-template", **fields)


def test_the_admin_edits_replicas_and_shows_their_state(admin_client: Any, vllm: FakeVLLM) -> None:
    endpoint = model_endpoint_register(
        name="smol-up",
        family="hf-template",
        backend="openai-upstream",
        base_url=vllm.url,
        replica_urls=["http://vllm-2:8000/v1"],
    )
    replica_health.mark_failed("http://vllm-2:8000/v1")
    page = admin_client.get(f"/admin/chat/modelendpoint/{endpoint.pk}/change/")
    assert page.status_code == 200
    assert f"{vllm.url}: up, http://vllm-2:8000/v1: down" in page.content.decode()
    assert admin_client.get("/admin/chat/modelendpoint/").status_code == 200
    assert admin_client.get("/admin/chat/modelendpoint/add/").status_code == 200
