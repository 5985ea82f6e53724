"""JOB_RETENTION_DAYS: the hourly sweep (``core.maintenance.delete_expired_jobs``) deletes pdf2text, summarization
and image jobs that finished longer ago than that, with their stored files; it leaves newer ones, unfinished ones
and, with 0 (the default), every job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from apps.core.tasks import delete_expired_jobs_task
from apps.images.models import GeneratedImage, ImageJob
from apps.text.models import Pdf2TextJob, SummarizationJob

DAY = timedelta(days=1)


def _stored(name: str) -> str:
    return default_storage.save(name, ContentFile(b"bytes"))


def _text_job(model: Any, owner: Any, *, status: str, ended: timedelta | None, **fields: Any) -> Any:
    return model.objects.create(
        owner=owner,
        status=status,
        finished_at=timezone.now() - ended if ended is not None else None,
        file=_stored("text/upload.pdf"),
        **fields,
    )


def _image_job(owner: Any, *, ended: timedelta) -> ImageJob:
    job = ImageJob.objects.create(
        owner=owner,
        route="/v1/images/generations",
        model="tiny-sd",
        prompt="a tiger",
        width=64,
        height=64,
        steps=1,
        status="succeeded",
        finished_at=timezone.now() - ended,
    )
    for index in range(2):
        GeneratedImage.objects.create(
            job=job, owner=owner, index=index, file=_stored("images/a.png"), thumbnail=_stored("images/a.thumb.png")
        )
    return job


def _names(job: Any) -> list[str]:
    return job.stored_file_names()


@pytest.fixture
def jobs(tenant: Any) -> dict[str, Any]:
    owner = tenant.user
    return {
        "old pdf2text": _text_job(Pdf2TextJob, owner, status="succeeded", ended=10 * DAY),
        "old failed summary": _text_job(SummarizationJob, owner, status="failed", ended=8 * DAY, source="pdf"),
        "old images": _image_job(owner, ended=30 * DAY),
        "new pdf2text": _text_job(Pdf2TextJob, owner, status="succeeded", ended=6 * DAY),
        "new images": _image_job(owner, ended=DAY),
        "running summary": _text_job(SummarizationJob, owner, status="running", ended=None, source="pdf"),
    }


def test_jobs_past_their_retention_go_with_their_files(tenant, jobs, settings, django_capture_on_commit_callbacks):
    settings.JOB_RETENTION_DAYS = 7
    names = {label: _names(job) for label, job in jobs.items()}
    assert all(default_storage.exists(name) for kept in names.values() for name in kept)
    assert len(names["old images"]) == 4

    with django_capture_on_commit_callbacks(execute=True):
        assert delete_expired_jobs_task.delay().get() == 3

    for label, job in jobs.items():
        expired = label.startswith("old")
        assert type(job).objects.filter(pk=job.pk).exists() is not expired, label
        assert all(default_storage.exists(name) is not expired for name in names[label]), label
    assert not GeneratedImage.objects.filter(job_id=jobs["old images"].pk).exists()
    gone = tenant.client.get(f"/v1/pdf2text/{jobs['old pdf2text'].pk}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert tenant.client.get(f"/v1/pdf2text/{jobs['new pdf2text'].pk}").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        assert delete_expired_jobs_task.delay().get() == 0  # nothing left to do


def test_no_retention_keeps_every_job(jobs, settings, django_capture_on_commit_callbacks):
    assert django_settings.JOB_RETENTION_DAYS == 0  # the default
    with django_capture_on_commit_callbacks(execute=True):
        assert delete_expired_jobs_task.delay().get() == 0
    assert all(type(job).objects.filter(pk=job.pk).exists() for job in jobs.values())


def test_the_sweep_runs_hourly():
    entry = django_settings.CELERY_BEAT_SCHEDULE["core-delete-expired-jobs"]
    assert (entry["task"], entry["schedule"]) == (delete_expired_jobs_task.name, 3600.0)
