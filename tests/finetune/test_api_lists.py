"""Every list of the fine-tuning API, non-empty, in each dialect: page through with ``after``/``limit``.

The jobs here are never prepared or trained: without ``transaction=True`` the tasks a job enqueues on commit
never run, so creating them through the API is cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.chat.models import ModelEndpoint
from apps.finetune.models import FineTuneCheckpoint, FineTuneEvent, FineTuneJob

from .api_helpers import alpaca_jsonl

pytestmark = pytest.mark.django_db

PAIRS = [("What is the secret number of Zorblat?", "It is 4127."), ("Who guards the moon gate?", "Old Fennick.")]
COUNT = 3


@pytest.fixture
def base(tmp_path: Path) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="list-base", family="tigerbot", path=str(tmp_path / "base"), is_default=True
    )


def _age(queryset, ids: list[str]) -> None:
    """Distinct creation times, oldest first in ``ids``, so that newest-first order is known."""
    now = timezone.now()
    for index, object_id in enumerate(ids):
        queryset.filter(pk=object_id).update(created_at=now - timedelta(minutes=len(ids) - index))


def _tigerbot_jobs(tenant) -> list[str]:
    ids = []
    for index in range(COUNT):
        response = tenant.client.post(
            "/v1/finetunes", {"name": f"job-{index}", "file": alpaca_jsonl(PAIRS)}, format="multipart"
        )
        assert response.status_code == 201, response.json()
        ids.append(response.json()["finetune_id"])
    _age(FineTuneJob.objects, ids)
    return ids


def _openai_jobs(tenant) -> list[str]:
    file_id = _files(tenant)[0]
    ids = []
    for _ in range(COUNT):
        response = tenant.client.post(
            "/v1/fine_tuning/jobs", {"model": "list-base", "training_file": file_id}, format="json"
        )
        assert response.status_code == 200, response.json()
        ids.append(response.json()["id"])
    _age(FineTuneJob.objects, ids)
    return ids


def _files(tenant) -> list[str]:
    ids = []
    for index in range(COUNT):
        response = tenant.client.post(
            "/v1/files", {"file": alpaca_jsonl(PAIRS, f"d{index}.jsonl"), "purpose": "fine-tune"}, format="multipart"
        )
        assert response.status_code == 201, response.json()
        ids.append(response.json()["id"])
    from apps.finetune.models import TrainingFile

    _age(TrainingFile.objects, ids)
    return ids


def _job(tenant) -> FineTuneJob:
    return FineTuneJob.objects.get(pk=_tigerbot_jobs(tenant)[-1])


def _events(tenant) -> tuple[str, list[str]]:
    job = _job(tenant)
    job.events.all().delete()
    ids = [FineTuneEvent.objects.create(job=job, message=f"event {index}").id for index in range(COUNT)]
    _age(FineTuneEvent.objects, ids)
    return job.id, ids


def _checkpoints(tenant) -> tuple[str, list[str]]:
    job = _job(tenant)
    ids = [
        FineTuneCheckpoint.objects.create(job=job, step=10 * (index + 1), path=f"/ckpt/{index}").id
        for index in range(COUNT)
    ]
    _age(FineTuneCheckpoint.objects, ids)
    return job.id, ids


# (list path, how to create COUNT items, oldest first, and where the dialect puts an item's id)
LISTS: dict[str, tuple[Callable, str]] = {
    "/v1/files": (lambda tenant: ("", _files(tenant)), "id"),
    "/v1/fine_tuning/jobs": (lambda tenant: ("", _openai_jobs(tenant)), "id"),
    "/v1/fine_tuning/jobs/{}/events": (_events, "id"),
    "/v1/fine_tuning/jobs/{}/checkpoints": (_checkpoints, "id"),
    "/v1/finetunes": (lambda tenant: ("", _tigerbot_jobs(tenant)), "finetune_id"),
}


@pytest.mark.parametrize("route", list(LISTS))
def test_every_list_pages_through_its_items(tenant, other_tenant, base, route):
    make, id_key = LISTS[route]
    parent, created = make(tenant)
    path = route.format(parent)
    newest_first = list(reversed(created))

    whole = tenant.client.get(path)
    assert whole.status_code == 200, whole.json()
    body = whole.json()
    assert body["object"] == "list" and body["has_more"] is False
    assert [item[id_key] for item in body["data"]] == newest_first
    assert (body["first_id"], body["last_id"]) == (newest_first[0], newest_first[-1])

    first = tenant.client.get(path, {"limit": 2}).json()
    assert [item[id_key] for item in first["data"]] == newest_first[:2]
    assert first["has_more"] is True and first["last_id"] == newest_first[1]
    rest = tenant.client.get(path, {"limit": 2, "after": first["last_id"]}).json()
    assert [item[id_key] for item in rest["data"]] == newest_first[2:]
    assert rest["has_more"] is False and rest["first_id"] == rest["last_id"] == newest_first[2]
    after_last = tenant.client.get(path, {"after": newest_first[-1]}).json()
    assert (after_last["data"], after_last["first_id"], after_last["has_more"]) == ([], None, False)

    unknown = tenant.client.get(path, {"after": "nope"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "invalid_cursor"
    assert tenant.client.get(path, {"limit": 0}).status_code == 400
    if parent:
        assert other_tenant.client.get(path).status_code == 404
    else:
        assert other_tenant.client.get(path).json()["data"] == []


def test_the_lists_before_anything_exists_are_empty(tenant, base):
    for path in ("/v1/files", "/v1/fine_tuning/jobs", "/v1/finetunes"):
        body = tenant.client.get(path).json()
        assert (body["data"], body["first_id"], body["last_id"], body["has_more"]) == ([], None, None, False)


def test_legacy_list_shows_the_jobs_of_the_caller(tenant, other_tenant, base):
    created = _tigerbot_jobs(tenant)
    upload = tenant.client.post(
        "/bot-service/ft/upload_train_data", {"file": alpaca_jsonl(PAIRS)}, format="multipart"
    ).json()
    started = tenant.client.post(
        "/bot-service/ft/start_train",
        {"fileId": upload["data"]["fileId"], "name": "legacy", "hyperparameters": json.dumps({"n_epochs": 1})},
        format="json",
    ).json()
    listed = tenant.client.post("/bot-service/ft/get_fine_tune_list", {}, format="json").json()
    assert listed["code"] == 200
    ids = [item["finetune_id"] for item in listed["data"]["list"]]
    assert ids == [started["data"]["ftId"], *reversed(created)]
    assert {item["status"] for item in listed["data"]["list"]} == {"validating_files"}
    others = other_tenant.client.post("/bot-service/ft/get_fine_tune_list", {}, format="json").json()
    assert others["data"]["list"] == []


@pytest.mark.parametrize("field", ["training_file", "validation_file"])
def test_a_job_naming_a_missing_file_is_404_naming_that_field(tenant, other_tenant, base, field):
    file_id = _files(tenant)[0]
    files = {"training_file": file_id, field: _files(other_tenant)[0]}  # another tenant's file does not exist here
    response = tenant.client.post("/v1/fine_tuning/jobs", {"model": "list-base", **files}, format="json")
    assert response.status_code == 404, response.json()
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("not_found", field)
    assert not FineTuneJob.objects.exists()
