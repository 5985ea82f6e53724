"""Fine-tuning jobs through the API: the model learns, the job can be cancelled, killed workers fail cleanly."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.chat.models import ModelEndpoint
from apps.finetune.models import FineTunedModel, FineTuneJob, TrainingFile

from .api_helpers import FAST_LEARNING, alpaca_jsonl, running_job, wait_for, wait_for_training_stopped


@pytest.fixture
def base(db, identity_base) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="identity-base",
        family="tigerbot",
        path=str(identity_base),
        max_new_tokens=48,
        max_input_tokens=256,
        is_default=True,
    )


def _create(client, pairs, *, method="lora", hyperparameters=FAST_LEARNING, **fields):
    import json

    body = {
        "name": "identity",
        "file": alpaca_jsonl(pairs),
        "method": method,
        "hyperparameters": json.dumps(hyperparameters),
        **fields,
    }
    return client.post("/v1/finetunes", body, format="multipart")


def _ask(client, path: str, question: str, **body) -> str:
    response = client.post(path, {"query": question, "temperature": 0, **body}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["result"].strip()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_qlora_job_learns_and_its_model_answers_online_only(tenant, other_tenant, base, identity_examples):
    created = _create(tenant.client, identity_examples, method="qlora")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["status"] == "validating_files" and body["service_status"] == "unavailable"
    assert body["available"] is False and body["file_name"] == "data.jsonl"

    job = wait_for(body["finetune_id"])
    assert job.status == "succeeded", (job.error, list(job.events.values_list("message", flat=True)))
    detail = tenant.client.get(f"/v1/finetunes/{job.id}").json()
    assert detail["report"]["kept"] == len(identity_examples) and detail["report"]["preview"]
    assert detail["progress"]["step"] == FAST_LEARNING["max_steps"]
    assert detail["service_status"] == "online" and detail["available"] is True

    chat_path = f"/v1/finetunes/{job.id}/chat"
    for question, answer in identity_examples:
        assert _ask(tenant.client, chat_path, question) == answer
        base_answer = (
            tenant.client.post("/v1/chat/completions", {"query": question, "temperature": 0}, format="json")
            .json()["result"]
            .strip()
        )
        assert base_answer != answer

    assert tenant.client.post(f"/v1/finetunes/{job.id}/offline").json()["service_status"] == "offline"
    offline = tenant.client.post(chat_path, {"query": identity_examples[0][0]}, format="json")
    assert offline.status_code == 409 and offline.json()["error"]["code"] == "model_offline"
    model_name = detail["fine_tuned_model"]
    assert model_name not in {m["id"] for m in tenant.client.get("/v1/models").json()["data"]}
    assert tenant.client.post(f"/v1/finetunes/{job.id}/online").json()["available"] is True
    assert model_name in {m["id"] for m in tenant.client.get("/v1/models").json()["data"]}

    # Another tenant sees none of it.
    for path in ("", "/chat", "/online", "/cancel"):
        method = other_tenant.client.get if not path else other_tenant.client.post
        assert method(f"/v1/finetunes/{job.id}{path}").status_code == 404
    chat = other_tenant.client.post("/v1/chat/completions", {"model": model_name, "query": "hi"}, format="json")
    assert chat.status_code == 404
    assert model_name not in {m["id"] for m in other_tenant.client.get("/v1/models").json()["data"]}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_only_the_checkpoints_the_trainer_keeps_are_listed(tenant, base, identity_examples):
    rotating = {**FAST_LEARNING, "max_steps": 12, "save_steps": 3, "save_total_limit": 2}  # saves 4, keeps 2
    job_id = _create(tenant.client, identity_examples, hyperparameters=rotating).json()["finetune_id"]
    job = wait_for(job_id)
    assert job.status == "succeeded", job.error
    listed = tenant.client.get(f"/v1/fine_tuning/jobs/{job_id}/checkpoints").json()["data"]
    assert [checkpoint["step_number"] for checkpoint in listed] == [12, 9]
    assert all(Path(path).is_dir() for path in job.checkpoints.values_list("path", flat=True))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cancel_mid_run_answers_cancelled_and_frees_the_process(tenant, base, identity_examples):
    long_run = {**FAST_LEARNING, "max_steps": 100_000, "save_steps": None}
    job_id = _create(tenant.client, identity_examples, hyperparameters=long_run).json()["finetune_id"]
    job = wait_for(job_id, statuses=("running",), predicate=lambda j: j.progress.get("step"))
    pid = job.progress["pid"]
    shown = tenant.client.get(f"/v1/finetunes/{job_id}").json()["progress"]
    assert shown["step"] and "pid" not in shown  # the host's business, not the caller's
    response = tenant.client.post(f"/v1/finetunes/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["finished_at"] is not None
    job = wait_for_training_stopped(job_id)
    assert job.status == "cancelled" and job.error is None
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert tenant.client.get(f"/v1/fine_tuning/jobs/{job_id}").json()["fine_tuned_model"] is None
    again = tenant.client.post(f"/v1/finetunes/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_not_cancellable"
    assert again.json()["error"]["message"] == "The job has already been cancelled."


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigkill_of_the_training_child_fails_the_job_with_a_reason(tenant, base, identity_examples):
    long_run = {**FAST_LEARNING, "max_steps": 100_000, "save_steps": None}
    job_id = _create(tenant.client, identity_examples, hyperparameters=long_run).json()["finetune_id"]
    job = wait_for(job_id, statuses=("running",), predicate=lambda j: j.progress.get("step"))
    os.kill(job.progress["pid"], signal.SIGKILL)
    job = wait_for(job_id)
    assert job.status == "failed"
    assert job.error["code"] == "killed" and "SIGKILL" in job.error["message"]
    assert tenant.client.get(f"/v1/finetunes/{job_id}").json()["error"]["code"] == "killed"


@pytest.mark.django_db
def test_a_stale_running_job_is_failed_by_the_sweep_not_by_reading_it(tenant, base, identity_examples):
    from apps.finetune.tasks import fail_stale_jobs_task

    training_file = TrainingFile.objects.create(
        owner=tenant.user, filename="x.jsonl", bytes=1, format="alpaca", total=1, valid_count=1
    )
    job = FineTuneJob.objects.create(
        owner=tenant.user,
        base_model="identity-base",
        training_file=training_file,
        status="running",
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    assert tenant.client.get(f"/v1/fine_tuning/jobs/{job.id}").json()["status"] == "running"
    assert tenant.client.get("/v1/finetunes").json()["data"][0]["status"] == "running"
    assert fail_stale_jobs_task.delay().get() == 1
    body = tenant.client.get(f"/v1/fine_tuning/jobs/{job.id}").json()
    assert body["status"] == "failed" and body["error"]["code"] == "worker_lost"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/fine_tuning/jobs/{id}/cancel", "/v1/finetunes/{id}/cancel"])
def test_cancelling_a_running_job_answers_it_cancelled(tenant, path):
    job = running_job(tenant.user)
    response = tenant.client.post(path.format(id=job.id))
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "cancelled" and response.json()["finished_at"] is not None
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == ("cancelled", True)  # the worker's signal to stop the process
    retrieved = tenant.client.get(f"/v1/fine_tuning/jobs/{job.id}").json()
    tigerbot = tenant.client.get(f"/v1/finetunes/{job.id}").json()
    assert (retrieved["status"], tigerbot["status"]) == ("cancelled", "cancelled")
    events = [e["message"] for e in tenant.client.get(f"/v1/fine_tuning/jobs/{job.id}/events").json()["data"]]
    assert "Job cancelled; its training process is being stopped." in events

    again = tenant.client.post(path.format(id=job.id))
    assert again.status_code == 409
    error = again.json()["error"]
    assert (error["code"], error["message"]) == ("job_not_cancellable", "The job has already been cancelled.")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "message"),
    [("succeeded", "The job has already succeeded."), ("failed", "The job has already failed.")],
)
def test_a_finished_job_is_not_cancellable(tenant, status, message):
    job = running_job(tenant.user)
    FineTuneJob.objects.filter(pk=job.pk).update(status=status, finished_at=timezone.now())
    response = tenant.client.post(f"/v1/fine_tuning/jobs/{job.id}/cancel")
    assert response.status_code == 409
    assert (response.json()["error"]["code"], response.json()["error"]["message"]) == ("job_not_cancellable", message)
    assert tenant.client.get(f"/v1/fine_tuning/jobs/{job.id}").json()["status"] == status


@pytest.mark.django_db
@pytest.mark.parametrize("ended", ["succeeded", "failed", "cancelled"])
def test_a_training_that_ends_after_its_cancel_leaves_the_job_cancelled_with_no_model(
    tenant, settings, tmp_path, tiny_tokenizer_dir, identity_examples, monkeypatch, ended
):
    """The cancel is answered while the worker still trains; whatever the training process then ends with (it
    finished its last step before the worker looked, it crashed, or the worker stopped it), the job stays cancelled
    and nothing it wrote becomes a model."""
    import json

    from apps.finetune.services import training
    from apps.finetune.services.training import finetune_job_prepare
    from apps.finetune.tasks import train_job_task
    from workers.finetune.launcher import TrainOutcome

    settings.FINETUNE_DIR = str(tmp_path)
    ModelEndpoint.objects.create(name="tiny", family="tigerbot", path=str(tiny_tokenizer_dir), is_default=True)
    created = tenant.client.post(
        "/v1/fine_tuning/jobs",
        {
            "training_file": tenant.client.post(
                "/v1/files", {"file": alpaca_jsonl(identity_examples), "purpose": "fine-tune"}, format="multipart"
            ).json()["id"],
            "model": "tiny",
        },
        format="json",
    )
    assert created.status_code == 200, created.json()
    job_id = created.json()["id"]
    finetune_job_prepare(job_id=job_id)  # the tasks themselves would only run once the test transaction commits
    answers = []

    def train_until_cancelled(*, config, cancel_check, **_):
        assert FineTuneJob.objects.get(pk=job_id).status == "running"
        answers.append(tenant.client.post(f"/v1/fine_tuning/jobs/{job_id}/cancel").json())
        assert cancel_check()  # what the worker polls to stop the training process group
        Path(config.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(config.output_dir) / "adapter_config.json").write_text(json.dumps({}))
        return TrainOutcome(status=ended, output_dir=config.output_dir, error_code="crashed", error_message="x")

    monkeypatch.setattr(training, "launch_training", train_until_cancelled)
    train_job_task.delay(job_id).get()

    assert [a["status"] for a in answers] == ["cancelled"]
    body = tenant.client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
    assert (body["status"], body["fine_tuned_model"], body["error"]) == ("cancelled", None, None)
    assert body["finished_at"] == answers[0]["finished_at"]
    assert not FineTunedModel.objects.exists()
    assert not any(m["id"].startswith("ft:") for m in tenant.client.get("/v1/models").json()["data"])
    assert tenant.client.get(f"/v1/finetunes/{job_id}").json()["service_status"] == "unavailable"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "status", "param"),
    [
        ({"model": "nope"}, 404, "model"),
        ({"method": "rlhf"}, 400, "method"),
        ({"hyperparameters": {"lora_r": 0}}, 400, "hyperparameters.lora_r"),
        ({"hyperparameters": {"learning_rate": 7}}, 400, "hyperparameters.learning_rate"),
        ({"hyperparameters": {"n_epoch": 3}}, 400, "hyperparameters.n_epoch"),
        ({"hyperparameters": {"validation_split": 0.9}}, 400, "hyperparameters.validation_split"),
        ({"hyperparameters": "{not json"}, 400, "hyperparameters"),
        ({"suffix": "has spaces"}, 400, "suffix"),
    ],
)
def test_bad_job_requests_are_4xx_and_create_nothing(tenant, base, identity_examples, fields, status, param):
    import json

    hyperparameters = fields.pop("hyperparameters", {})
    raw = hyperparameters if isinstance(hyperparameters, str) else json.dumps(hyperparameters)
    body = {"name": "x", "file": alpaca_jsonl(identity_examples), "hyperparameters": raw, **fields}
    response = tenant.client.post("/v1/finetunes", body, format="multipart")
    assert response.status_code == status, response.json()
    assert response.json()["error"]["param"] == param
    assert not FineTuneJob.objects.exists()


@pytest.mark.django_db
def test_an_openai_job_request_refuses_a_field_it_does_not_know(tenant, base, identity_examples):
    uploaded = tenant.client.post(
        "/v1/files", {"file": alpaca_jsonl(identity_examples), "purpose": "fine-tune"}, format="multipart"
    ).json()["id"]
    body = {"model": "identity-base", "training_file": uploaded}
    # A hyperparameter at the top level would otherwise train with the default silently.
    response = tenant.client.post("/v1/fine_tuning/jobs", {**body, "n_epochs": 3}, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["param"], error["code"], error["message"]) == (
        "n_epochs",
        "invalid_request",
        "n_epochs: n_epochs is not a known field.",
    )
    assert not FineTuneJob.objects.exists()
    documented = {"metadata": {"team": "qa"}, "integrations": [], "seed": 7, "suffix": "qa", "validation_file": None}
    created = tenant.client.post("/v1/fine_tuning/jobs", {**body, **documented}, format="json")
    assert created.status_code == 200, created.json()


@pytest.mark.django_db
def test_a_fine_tuned_model_cannot_be_used_before_it_exists(tenant, base):
    training_file = TrainingFile.objects.create(
        owner=tenant.user, filename="x.jsonl", bytes=1, format="alpaca", total=1, valid_count=1
    )
    job = FineTuneJob.objects.create(
        owner=tenant.user, base_model="identity-base", training_file=training_file, status="queued"
    )
    response = tenant.client.post(f"/v1/finetunes/{job.id}/chat", {"query": "hi"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "model_not_ready"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "stored", "counts"),
    [
        ({}, None, (8, 0, "none")),
        ({"validation_split": 0.25}, 0.25, (6, 2, "split")),
        ({"validation_split": 0}, 0, (8, 0, "none")),
        ({"validation_split": "auto"}, None, (8, 0, "none")),
    ],
)
def test_eight_uploaded_pairs_are_all_trained_on_unless_validation_is_asked_for(
    tenant, settings, tmp_path, tiny_tokenizer_dir, options, stored, counts
):
    import json

    from apps.finetune.services.training import finetune_job_prepare

    settings.FINETUNE_DIR = str(tmp_path)
    ModelEndpoint.objects.create(name="tiny", family="tigerbot", path=str(tiny_tokenizer_dir), is_default=True)
    pairs = [
        (f"Which {c} is the {n}?", f"The {n} {c} is {b}.")
        for c, n, b in zip(
            ["river", "planet", "stone", "vault", "mayor", "treaty", "moon", "gate"],
            ["oldest", "coldest", "brightest", "deepest", "tallest", "strangest", "quietest", "widest"],
            ["Silverkin", "Kethra", "Flemwick", "Azure", "Olsund", "Varnholm", "Pell", "Orrin"],
            strict=True,
        )
    ]
    response = tenant.client.post(
        "/v1/finetunes",
        {"name": "split", "file": alpaca_jsonl(pairs), "hyperparameters": json.dumps(options)},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    job = FineTuneJob.objects.get(pk=response.json()["finetune_id"])
    assert job.hyperparameters.get("validation_split") == stored
    finetune_job_prepare(job_id=job.id)  # the task itself would only run once the test transaction commits
    job.refresh_from_db()
    assert job.status == "queued", job.error
    report = job.report
    assert (report["train_count"], report["validation_count"], report["validation_source"]) == counts
    assert report["kept"] == 8
