"""Summarization: the map-reduce planner on its own, and the API end to end with a real (tiny, random) model
whose context window is a small fraction of the document."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.chat.models import ModelEndpoint
from apps.text.models import SummarizationJob
from apps.text.tasks import fail_stale_jobs_task
from apps.usage.models import UsageRecord
from tests.text.conftest import PDF_ROOT, stored_files
from workers.text import summarize as planner

# --- The planner, with a word counter and a fake model ----------------------------------------------------


def words(text: str) -> int:
    return len(text.split())


def fake_model(calls: list[str]) -> Any:
    def generate(prompt: str, max_new_tokens: int) -> str:
        calls.append(prompt)
        return " ".join(["gist"] * max_new_tokens)

    return generate


def test_short_text_takes_one_call():
    calls: list[str] = []
    outcome = planner.summarize(
        text="A short note about tigers.",
        language="en",
        max_input_tokens=200,
        final_tokens=5,
        part_tokens=5,
        count_prompt=words,
        count=words,
        generate=fake_model(calls),
    )
    assert outcome.summary == "gist gist gist gist gist"
    assert len(calls) == 1 and calls[0].endswith("A short note about tigers.")
    assert [step.stage for step in outcome.steps] == ["map"]


def test_long_text_is_mapped_then_reduced_until_it_fits():
    text = "\n\n".join(f"Paragraph {n} says something about tigers and rivers." for n in range(300))
    calls: list[str] = []
    progress: list[tuple[str, int, int]] = []
    outcome = planner.summarize(
        text=text,
        language="en",
        max_input_tokens=80,
        final_tokens=30,
        part_tokens=30,
        count_prompt=words,
        count=words,
        generate=fake_model(calls),
        on_progress=lambda p, steps: progress.append((p.stage, p.done, p.total)),
    )
    stages = [step.stage for step in outcome.steps]
    assert stages[0] == "map" and stages.count("reduce") >= 2 and stages[-1] == "reduce"
    mapped = outcome.steps[0]
    assert mapped.inputs == mapped.outputs > 10
    assert all(words(prompt) <= 80 for prompt in calls)  # every prompt fits the model
    for earlier, later in zip(outcome.steps[1:], outcome.steps[2:], strict=False):
        assert later.inputs < earlier.inputs  # each reduce round shrinks the pile
    assert outcome.summary == " ".join(["gist"] * 30)
    assert progress[-1] == ("done", 1, 1)
    assert ("map", mapped.outputs, mapped.outputs) in progress
    # Every paragraph reached some map prompt, in order.
    map_prompts = "\n".join(calls[: mapped.inputs])
    positions = [map_prompts.find(f"Paragraph {n} ") for n in range(300)]
    assert -1 not in positions and positions == sorted(positions)


def test_a_paragraph_without_breaks_is_cut_where_the_tokens_run_out():
    parts = planner.split_text("word " * 1000, budget=64, count=words)
    assert all(words(part) <= 64 for part in parts)
    assert sum(words(part) for part in parts) == 1000


def test_a_context_too_small_for_any_text_is_an_error():
    with pytest.raises(planner.ContextTooSmallError):
        planner.summarize(
            text="x " * 100,
            language="en",
            max_input_tokens=30,
            final_tokens=5,
            part_tokens=5,
            count_prompt=words,
            count=words,
            generate=fake_model([]),
        )


def test_language_detection_and_prompts():
    assert planner.detect_language("长江是中国最长的河流，全长六千三百公里。") == "zh"
    assert planner.detect_language("The Yangtze is the longest river in China.") == "en"
    assert planner.render_prompt(kind="map", language="zh", text="正文").startswith("请")
    assert planner.render_prompt(kind="reduce", language="en", text="body").endswith("\n\nbody")


# --- The API, end to end ----------------------------------------------------------------------------------


def api_test(test: Any) -> Any:
    """A test through the API: a database, and on_commit callbacks (the job, usage) run at once."""
    return pytest.mark.usefixtures("run_on_commit_at_once")(pytest.mark.django_db(test))


DOCUMENT = "\n\n".join(
    f"Section {n}. The river city of Wuhan held its {n}th annual dragon boat festival. Teams from many "
    f"provinces raced along the Yangtze, and the crowd cheered as the drums kept time."
    for n in range(1, 41)
)


def submit(client: Any, **body: Any) -> Any:
    if "file" in body:
        return client.post("/v1/summarization", body, format="multipart")
    return client.post("/v1/summarization", body, format="json")


@api_test
def test_document_longer_than_the_context_is_mapped_and_reduced(tenant, small_model):
    from workers.runtime.loading import load_tokenizer

    tokens = len(load_tokenizer(path=small_model.path).encode(DOCUMENT, add_special_tokens=False))
    assert tokens > 10 * small_model.max_input_tokens

    response = submit(tenant.client, text=DOCUMENT, model="tiny-summarizer", max_length=12)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["object"] == "summarization" and body["id"].startswith("summ-")
    assert body["status"] == "succeeded", body["error"]
    assert isinstance(body["summary"], str)
    assert (body["model"], body["language"], body["source"], body["file_url"]) == (
        "tiny-summarizer",
        "en",
        "text",
        None,
    )
    assert body["progress"] == {"stage": "done", "done": 1, "total": 1}
    stages = [step["stage"] for step in body["steps"]]
    assert stages[0] == "map" and stages[-1] == "reduce"
    assert body["steps"][0]["inputs"] == body["steps"][0]["outputs"] >= 10
    assert body["usage"]["completion_tokens"] > 0
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    assert tenant.client.get(f"/v1/summarization/{body['id']}").json() == body

    record = UsageRecord.objects.get(owner=tenant.user)
    assert (record.route, record.model, record.completion_tokens) == (
        "/v1/summarization",
        "tiny-summarizer",
        body["usage"]["completion_tokens"],
    )


@api_test
def test_progress_is_saved_after_every_model_call(tenant, small_model, monkeypatch):
    from apps.text.services import summarization as services

    seen: list[Any] = []
    real_generate = services._generate

    def spy(**kwargs: Any) -> Any:
        job = SummarizationJob.objects.get()
        seen.append((job.status, job.progress))
        return real_generate(**kwargs)

    monkeypatch.setattr(services, "_generate", spy)
    assert submit(tenant.client, text=DOCUMENT, model="tiny-summarizer").json()["status"] == "succeeded"
    assert all(status == "running" for status, _ in seen)
    assert [progress["done"] for _, progress in seen[:3]] == [0, 1, 2]
    assert {progress["stage"] for _, progress in seen} == {"map", "reduce"}


@api_test
def test_short_chinese_text_from_a_file(tenant, small_model, settings):
    upload = SimpleUploadedFile("note.txt", "长江是中国最长的河流。".encode(), content_type="text/plain")
    body = submit(tenant.client, file=upload, model="tiny-summarizer", language="auto").json()
    assert body["status"] == "succeeded", body
    assert (body["language"], body["source"], body["filename"]) == ("zh", "text_file", "note.txt")
    assert [step["stage"] for step in body["steps"]] == ["map"]
    response = tenant.client.get(body["file_url"])
    assert b"".join(response.streaming_content) == "长江是中国最长的河流。".encode()
    assert len(stored_files(settings.MEDIA_ROOT)) == 1


@api_test
def test_pdf_is_extracted_then_summarised(tenant, small_model):
    path = PDF_ROOT / "pypdf/resources/crazyones.pdf"
    if not path.is_file():
        pytest.skip("shared PDF fixtures not found")
    upload = SimpleUploadedFile("crazyones.pdf", path.read_bytes(), content_type="application/pdf")
    body = submit(tenant.client, file=upload, model="tiny-summarizer").json()
    assert body["status"] == "succeeded", body
    assert body["source"] == "pdf" and body["steps"]
    assert "The Crazy Ones" in SummarizationJob.objects.get(pk=body["id"]).input_text


@api_test
def test_encrypted_pdf_without_password_fails_with_the_pdf_code(tenant, small_model):
    path = PDF_ROOT / "pypdf/resources/crazyones-encrypted-256.pdf"
    if not path.is_file():
        pytest.skip("shared PDF fixtures not found")
    upload = SimpleUploadedFile("secret.pdf", path.read_bytes(), content_type="application/pdf")
    body = submit(tenant.client, file=upload, model="tiny-summarizer").json()
    assert (body["status"], body["error"]["code"]) == ("failed", "password_required")


@api_test
@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"text": DOCUMENT, "model": "no-such-model"}, 404, "model_not_found", "model"),
        ({"text": "   "}, 400, "empty_text", "text"),
        ({}, 400, "invalid_request", "file"),
        ({"text": "x", "max_length": 0}, 400, "min_value", "max_length"),
        ({"text": "x", "language": "fr"}, 400, "invalid_choice", "language"),
        ({"file": ("empty.txt", b"")}, 400, "empty_file", "file"),
        ({"file": ("fake.pdf", b"plain text")}, 400, "invalid_pdf", "file"),
        ({"file": ("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00")}, 400, "unsupported_file_type", "file"),
        ({"file": ("blob.txt", b"ab\x00cd")}, 400, "unsupported_file_type", "file"),
    ],
    ids=[
        "unknown-model",
        "blank-text",
        "nothing",
        "max-length",
        "language",
        "empty-file",
        "fake-pdf",
        "png",
        "binary-txt",
    ],
)
def test_bad_requests_store_nothing(tenant, small_model, settings, body, status, code, param):
    if "model" not in body:
        body = {**body, "model": "tiny-summarizer"}
    if "file" in body:
        name, content = body["file"]
        body = {**body, "file": SimpleUploadedFile(name, content)}
    response = submit(tenant.client, **body)
    assert response.status_code == status, response.json()
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (code, param)
    assert SummarizationJob.objects.count() == 0
    assert stored_files(settings.MEDIA_ROOT) == []


@api_test
def test_text_over_the_limit(tenant, small_model, settings):
    settings.SUMMARIZATION_MAX_INPUT_CHARS = 100
    response = submit(tenant.client, text="x" * 101, model="tiny-summarizer")
    assert response.status_code == 413 and response.json()["error"]["code"] == "input_too_long"
    assert SummarizationJob.objects.count() == 0


@api_test
def test_json_body_over_the_memory_limit(tenant, small_model, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = submit(tenant.client, text="x" * 2000, model="tiny-summarizer")
    assert response.status_code == 413 and response.json()["error"]["code"] == "input_too_long"
    assert SummarizationJob.objects.count() == 0


@api_test
def test_a_context_too_small_for_the_prompt_fails_the_job(tenant, small_model):
    ModelEndpoint.objects.filter(pk=small_model.pk).update(max_input_tokens=40)
    body = submit(tenant.client, text=DOCUMENT, model="tiny-summarizer").json()
    assert (body["status"], body["error"]["code"]) == ("failed", "context_too_small")


@api_test
def test_another_tenants_jobs_are_404(tenant, other_tenant, small_model):
    upload = SimpleUploadedFile("note.md", b"# Notes\n\nTigers swim well.", content_type="text/markdown")
    job = submit(tenant.client, file=upload, model="tiny-summarizer").json()
    for url in (f"/v1/summarization/{job['id']}", job["file_url"]):
        response = other_tenant.client.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert other_tenant.client.get("/v1/summarization").json()["data"] == []
    listed = tenant.client.get("/v1/summarization").json()
    assert [item["id"] for item in listed["data"]] == [job["id"]]


@api_test
def test_stale_summarization_is_failed_by_the_sweep(tenant, small_model, settings):
    job_id = submit(tenant.client, text="Tigers swim well.", model="tiny-summarizer").json()["id"]
    silent = timezone.now() - timedelta(seconds=settings.SUMMARIZATION_HEARTBEAT_STALE_S + 1)
    SummarizationJob.objects.filter(pk=job_id).update(
        status="running", heartbeat_at=silent, started_at=silent, finished_at=None
    )
    assert fail_stale_jobs_task.delay().get() == 1
    body = tenant.client.get(f"/v1/summarization/{job_id}").json()
    assert (body["status"], body["error"]["code"]) == ("failed", "worker_lost")


@pytest.mark.django_db
def test_usage_is_written_in_the_transaction_that_ends_the_job(tenant, small_model):
    from apps.text.services.summarization import summarization_run

    # No on_commit callback runs in this test: the job stays queued until it is run here, and usage that was only
    # queued for after the commit would never be written.
    job_id = submit(tenant.client, text="Tigers swim well.", model="tiny-summarizer").json()["id"]
    summarization_run(job_id=job_id)
    job = SummarizationJob.objects.get(pk=job_id)
    record = UsageRecord.objects.get(owner=tenant.user)
    assert job.status == "succeeded"
    assert (record.route, record.completion_tokens) == ("/v1/summarization", job.completion_tokens)


def test_tasks_are_routed_to_their_queues(settings):
    from tigerplatform.celery import app, queue_for_task

    assert queue_for_task("text.pdf2text") == "ingest"
    assert queue_for_task("summarization.run") == "serve"
    task = app.tasks["summarization.run"]
    assert (task.soft_time_limit, task.time_limit) == (
        settings.SUMMARIZATION_TIME_LIMIT_S,
        settings.SUMMARIZATION_TIME_LIMIT_S + 60,
    )
    assert task.acks_late and task.reject_on_worker_lost
    assert app.conf.beat_schedule["text-fail-stale-jobs"]["task"] == "text.maintenance.fail_stale_jobs"
