"""Running batches: lines through the real chat path (a tiny model), bad lines in the error file, progress,
cancel, resume after a lost worker, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.batches import services
from apps.batches.models import Batch, BatchRequest
from apps.core.dispatch import wait_for_embedded_tasks
from apps.finetune.models import TrainingFile
from apps.usage.models import UsageRecord

from .conftest import GREETING_ANSWER, chat_line, create_batch, file_lines, wait_for_batch

pytestmark = pytest.mark.django_db(transaction=True)


def test_good_lines_answer_and_bad_lines_go_to_the_error_file(tenant, other_tenant, chatty, drain_tasks):
    lines = [
        chat_line("a"),
        "{not json",
        chat_line("b"),
        {**chat_line("c"), "url": "/v1/embeddings"},  # not the batch's endpoint
        chat_line("d", bogus_option=1),  # the endpoint refuses it: a 400 with its error body
        chat_line("e"),
        {"custom_id": "f", "method": "GET", "url": "/v1/chat/completions", "body": {}},
    ]
    created = create_batch(tenant.client, lines, metadata={"job": "nightly"})
    assert created["status"] == "validating" and created["id"].startswith("batch_")
    assert created["request_counts"] == {"total": 7, "completed": 0, "failed": 0}

    wait_for_embedded_tasks()
    batch = tenant.client.get(f"/v1/batches/{created['id']}").json()
    assert batch["status"] == "completed", batch
    assert batch["request_counts"] == {"total": 7, "completed": 3, "failed": 4}
    assert batch["metadata"] == {"job": "nightly"} and batch["model"] == "chatty"
    assert batch["in_progress_at"] and batch["finalizing_at"] and batch["completed_at"]
    assert batch["usage"]["input_tokens"] > 0 and batch["usage"]["output_tokens"] > 0

    output = file_lines(tenant.client, batch["output_file_id"])
    assert [line["custom_id"] for line in output] == ["a", "b", "e"]
    for line in output:
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"].startswith("req_")
        assert line["response"]["body"]["object"] == "chat.completion"
        assert line["response"]["body"]["choices"][0]["message"]["content"] == GREETING_ANSWER

    errors = {
        (line["custom_id"], line["error"]["code"] if line["error"] else None): line
        for line in file_lines(tenant.client, batch["error_file_id"])
    }
    assert set(errors) == {
        (None, "invalid_json_line"),
        ("c", "mismatched_endpoint"),
        ("d", None),
        ("f", "invalid_method"),
    }
    assert errors[(None, "invalid_json_line")]["error"]["line"] == 2
    assert "Line 2" in errors[(None, "invalid_json_line")]["error"]["message"]
    refused = errors[("d", None)]["response"]
    assert refused["status_code"] == 400 and refused["body"]["error"]["param"] == "bogus_option"

    usage = UsageRecord.objects.filter(owner=tenant.user)
    assert usage.count() == 3 and {u.api_key_id for u in usage} == {tenant.api_key.pk}
    assert {u.route for u in usage} == {"/v1/chat/completions"}

    files = {f["id"]: f for f in tenant.client.get("/v1/files").json()["data"]}
    assert files[batch["output_file_id"]]["purpose"] == "batch_output"
    assert files[batch["error_file_id"]]["purpose"] == "batch_output"
    assert not BatchRequest.objects.exists()  # the journal became the files
    for file_id in (batch["output_file_id"], batch["error_file_id"]):
        assert other_tenant.client.get(f"/v1/files/{file_id}/content").status_code == 404


def test_a_batch_of_only_good_lines_has_no_error_file(tenant, chatty, drain_tasks):
    created = create_batch(tenant.client, [chat_line("only")])
    wait_for_embedded_tasks()
    batch = tenant.client.get(f"/v1/batches/{created['id']}").json()
    assert batch["status"] == "completed" and batch["error_file_id"] is None and batch["output_file_id"]


def test_cancel_while_running_keeps_what_ran(tenant, chatty, settings, drain_tasks):
    settings.BATCH_CONCURRENCY = 1
    created = create_batch(tenant.client, [chat_line(f"line-{i}") for i in range(300)])
    running = wait_for_batch(created["id"], statuses=("in_progress",))
    while Batch.objects.get(pk=running.pk).request_completed < 2:  # progress is visible while it runs
        pass
    cancelled = tenant.client.post(f"/v1/batches/{created['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelling"
    assert tenant.client.post(f"/v1/batches/{created['id']}/cancel").json()["status"] == "cancelling"

    done = wait_for_batch(created["id"])
    assert done.status == "cancelled" and done.cancelling_at and done.cancelled_at
    assert 2 <= done.request_completed < 300 and done.request_total == 300
    assert len(file_lines(tenant.client, done.output_file_id)) == done.request_completed
    again = tenant.client.post(f"/v1/batches/{created['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "batch_not_cancellable"


def test_a_rerun_resumes_after_the_journaled_lines(tenant, chatty, drain_tasks):
    created = create_batch(tenant.client, [chat_line("a"), chat_line("b"), chat_line("c")])
    wait_for_embedded_tasks()
    assert Batch.objects.get(pk=created["id"]).status == "completed"

    # The same batch as a worker that died after its first line would have left it.
    stale = timezone.now() - timedelta(hours=1)
    Batch.objects.filter(pk=created["id"]).update(
        status="in_progress",
        heartbeat_at=stale,
        output_file_id="",
        error_file_id="",
        completed_at=None,
        finalizing_at=None,
        request_completed=7,
        request_failed=0,
    )
    first = {
        "id": "batch_req_from_the_first_run",
        "custom_id": "a",
        "error": None,
        "response": {"status_code": 200, "request_id": "req_1", "body": {"kept": True}},
    }
    BatchRequest.objects.create(batch_id=created["id"], line=1, custom_id="a", succeeded=True, record=first)

    assert services.batch_resume_stale() == 1
    assert services.batch_resume_stale() == 0  # sent once per stale window, however often it is checked
    wait_for_embedded_tasks()
    batch = Batch.objects.get(pk=created["id"])
    assert batch.status == "completed" and batch.attempts == 2
    assert (batch.request_completed, batch.request_failed) == (3, 0)
    output = file_lines(tenant.client, batch.output_file_id)
    assert output[0] == first and [line["custom_id"] for line in output] == ["a", "b", "c"]


def test_a_duplicate_run_of_a_live_batch_does_nothing(tenant, chatty, drain_tasks):
    created = create_batch(tenant.client, [chat_line("a")])
    wait_for_embedded_tasks()
    Batch.objects.filter(pk=created["id"]).update(status="in_progress", heartbeat_at=timezone.now())
    services.batch_run(batch_id=created["id"])
    assert Batch.objects.get(pk=created["id"]).status == "in_progress"


def test_a_batch_whose_worker_keeps_dying_fails(tenant, chatty, settings, drain_tasks):
    created = create_batch(tenant.client, [chat_line("a")])
    wait_for_embedded_tasks()
    Batch.objects.filter(pk=created["id"]).update(
        status="in_progress", heartbeat_at=timezone.now() - timedelta(hours=1), attempts=settings.BATCH_MAX_ATTEMPTS
    )
    services.batch_run(batch_id=created["id"])
    batch = Batch.objects.get(pk=created["id"])
    assert batch.status == "failed" and batch.failed_at and batch.errors["data"][0]["code"] == "worker_lost"


def test_an_expired_batch_reports_every_line_that_did_not_run(tenant, chatty, drain_tasks):
    created = create_batch(tenant.client, [chat_line("a"), "{oops", chat_line("b")])
    wait_for_embedded_tasks()
    Batch.objects.filter(pk=created["id"]).update(
        status="validating",
        heartbeat_at=None,
        expires_at=timezone.now() - timedelta(seconds=1),
        output_file_id="",
        error_file_id="",
        completed_at=None,
        request_completed=0,
        request_failed=0,
    )
    services.batch_run(batch_id=created["id"])
    batch = Batch.objects.get(pk=created["id"])
    assert batch.status == "expired" and batch.expired_at and not batch.output_file_id
    codes = [line["error"]["code"] for line in file_lines(tenant.client, batch.error_file_id)]
    assert codes == ["batch_expired", "invalid_json_line", "batch_expired"]


def test_a_batch_whose_input_file_was_deleted_fails(tenant, chatty, drain_tasks):
    created = create_batch(tenant.client, [chat_line("a")])
    wait_for_embedded_tasks()
    Batch.objects.filter(pk=created["id"]).update(status="validating", heartbeat_at=None, output_file_id="")
    TrainingFile.objects.filter(pk=created["input_file_id"]).delete()
    services.batch_run(batch_id=created["id"])
    batch = Batch.objects.get(pk=created["id"])
    assert batch.status == "failed" and batch.errors["data"][0]["code"] == "invalid_input_file"
