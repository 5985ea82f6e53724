"""The official `openai` SDK drives fine-tuning end to end against a live server (LoRA)."""

from __future__ import annotations

import openai
import pytest

from apps.chat.models import ModelEndpoint

from .api_helpers import FAST_LEARNING, alpaca_jsonl, wait_for, wait_for_training_stopped

pytestmark = pytest.mark.slow  # training / whole-fixture sweeps: run in the services pass of CI


@pytest.mark.django_db(transaction=True)
def test_files_jobs_events_checkpoints_and_chat_with_the_fine_tuned_model(
    live_server, tenant, identity_base, identity_examples
):
    ModelEndpoint.objects.create(
        name="identity-base", family="tigerbot", path=str(identity_base), max_new_tokens=48, max_input_tokens=256
    )
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0, timeout=60)

    uploaded = client.files.create(file=("identity.jsonl", alpaca_jsonl(identity_examples).read()), purpose="fine-tune")
    assert uploaded.object == "file" and uploaded.purpose == "fine-tune"
    assert [f.id for f in client.files.list()] == [uploaded.id]

    job = client.fine_tuning.jobs.create(
        model="identity-base",
        training_file=uploaded.id,
        suffix="identity",
        seed=3,
        hyperparameters={"n_epochs": "auto"},
        extra_body={"training_method": "lora", "hyperparameters": FAST_LEARNING},
    )
    assert job.status == "validating_files" and job.training_file == uploaded.id
    assert [j.id for j in client.fine_tuning.jobs.list()] == [job.id]

    wait_for(job.id)
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model.startswith("ft:identity-base:identity:")
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert any(m.startswith("Step ") for m in messages) and "The job has successfully completed." in messages
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id)
    assert [c.step_number for c in checkpoints] == [60, 40]

    assert done.fine_tuned_model in {m.id for m in client.models.list()}
    question, answer = identity_examples[0]
    reply = client.chat.completions.create(
        model=done.fine_tuned_model, temperature=0, messages=[{"role": "user", "content": question}]
    )
    assert reply.choices[0].message.content.strip() == answer

    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.ConflictError):
        client.files.delete(uploaded.id)  # still referenced by the job


@pytest.mark.django_db(transaction=True)
def test_cancel_through_the_sdk(live_server, tenant, identity_base, identity_examples):
    ModelEndpoint.objects.create(
        name="identity-base", family="tigerbot", path=str(identity_base), max_new_tokens=48, max_input_tokens=256
    )
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=tenant.key, max_retries=0, timeout=60)
    uploaded = client.files.create(file=("d.jsonl", alpaca_jsonl(identity_examples).read()), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model="identity-base",
        training_file=uploaded.id,
        extra_body={"hyperparameters": {**FAST_LEARNING, "max_steps": 100_000}},
    )
    wait_for(job.id, statuses=("running",), predicate=lambda j: j.progress.get("step"))
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    wait_for_training_stopped(job.id)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
