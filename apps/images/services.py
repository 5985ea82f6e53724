"""Text-to-image: submitting a generation (checked, then queued on the ``serve`` queue), running it on a
serving worker (the Celery task in ``tasks.py`` is a one-line call into here), storing the images through
``default_storage``, failing the jobs whose worker vanished, and deleting a finished one with its images."""

from __future__ import annotations

import io
import logging
import time
from dataclasses import asdict, dataclass
from functools import partial

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from apps.chat.models import ModelEndpoint
from apps.chat.runtime_errors import to_domain_error
from apps.chat.selectors import resolve_model_path
from apps.core.dispatch import enqueue
from apps.core.errors import status_of
from apps.core.job_deletion import finished_job_delete
from apps.images import selectors
from apps.images.models import GeneratedImage, ImageJob
from apps.usage.services import usage_record_create
from workers.images import GeneratedImages, ImageRequest, generate_local, generate_upstream
from workers.runtime.errors import RuntimeErrorBase

logger = logging.getLogger(__name__)

THUMBNAIL_PX = 128
_PROGRESS_EVERY_S = 0.5  # progress writes at most this often (and at the last step)
WORKER_LOST = "worker_lost"


@dataclass(frozen=True)
class ImageParams:
    """A generation's parameters as checked, stored on its job as they are (one ``ImageJob`` field each)."""

    prompt: str
    width: int
    height: int
    n: int
    steps: int
    response_format: str = "url"
    seed: int | None = None
    negative_prompt: str = ""
    guidance_scale: float | None = None


def image_generation_create(
    *, owner: AbstractUser, api_key_id: str | None, route: str, model: str | None, params: ImageParams
) -> ImageJob:
    """Check the model and queue the generation on a serving worker (after the commit)."""
    endpoint = selectors.image_model_get(model=model)
    job = ImageJob.objects.create(
        owner=owner,
        api_key_id=api_key_id,
        route=route,
        model=endpoint.name,
        **asdict(params),
    )
    transaction.on_commit(partial(_send, job.pk))
    return job


def _send(job_id: str) -> None:
    from apps.images.tasks import image_generate_task

    try:
        enqueue(image_generate_task, job_id)
    except Exception as exc:  # the broker is down: say so on the job rather than leave it queued forever
        logger.exception("could not queue %s", job_id)
        _fail(job_id, code="queue_unavailable", http_status=503, message=f"The generation could not be queued: {exc}")


def _finish(
    job_id: str,
    *,
    status: str,
    error_code: str = "",
    error_message: str = "",
    error_param: str = "",
    error_status: int | None = None,
) -> bool:
    return bool(
        ImageJob.objects.filter(pk=job_id, status__in=[ImageJob.Status.QUEUED, ImageJob.Status.RUNNING]).update(
            status=status,
            error_code=error_code,
            error_message=error_message,
            error_param=error_param,
            error_status=error_status,
            finished_at=timezone.now(),
        )
    )


def _fail(job_id: str, *, code: str, http_status: int, message: str, param: str = "") -> bool:
    return _finish(
        job_id,
        status=ImageJob.Status.FAILED,
        error_code=code,
        error_message=message,
        error_param=param,
        error_status=http_status,
    )


def _request(job: ImageJob) -> ImageRequest:
    return ImageRequest(
        prompt=job.prompt,
        width=job.width,
        height=job.height,
        n=job.n,
        steps=job.steps,
        seed=job.seed,
        negative_prompt=job.negative_prompt or None,
        guidance_scale=job.guidance_scale,
    )


class _Progress:
    """Writes ``steps_done``/``steps_total`` and the heartbeat, at most every half second."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.written_at = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.written_at < _PROGRESS_EVERY_S:
            return
        self.written_at = now
        ImageJob.objects.filter(pk=self.job_id, status=ImageJob.Status.RUNNING).update(
            steps_done=done, steps_total=total, heartbeat_at=timezone.now()
        )


def _generate(endpoint: ModelEndpoint, job: ImageJob) -> GeneratedImages:
    request = _request(job)
    if endpoint.backend == ModelEndpoint.Backend.OPENAI_UPSTREAM:
        return generate_upstream(
            base_url=endpoint.base_url,
            model=endpoint.upstream_model or endpoint.name,
            api_key=endpoint.upstream_api_key,
            request=request,
            timeout_s=settings.IMAGES_UPSTREAM_TIMEOUT_S,
        )
    return generate_local(model_dir=resolve_model_path(endpoint.path), request=request, on_step=_Progress(job.pk))


def thumbnail_png(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def _content_type(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg", "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return "application/octet-stream", "bin"


def _store(job: ImageJob, generated: GeneratedImages, *, latency_ms: int) -> list[GeneratedImage]:
    """Save the images, then in one transaction their rows, the job's success and its usage record: a job is never
    seen succeeded without its images billed, nor billed without having succeeded."""
    stored: list[str] = []
    try:
        rows = []
        for index, data in enumerate(generated.pngs):
            content_type, suffix = _content_type(data)
            name = default_storage.save(f"images/{job.pk}/{index}.{suffix}", ContentFile(data))
            stored.append(name)
            thumb = default_storage.save(f"images/{job.pk}/{index}.thumb.png", ContentFile(thumbnail_png(data)))
            stored.append(thumb)
            revised = generated.revised_prompts[index] if index < len(generated.revised_prompts) else None
            rows.append(
                GeneratedImage(
                    job=job,
                    owner_id=job.owner_id,
                    index=index,
                    file=name,
                    thumbnail=thumb,
                    content_type=content_type,
                    seed=generated.seeds[index],
                    revised_prompt=revised or "",
                    size_bytes=len(data),
                )
            )
        with transaction.atomic():
            GeneratedImage.objects.bulk_create(rows)
            if not _finish(job.pk, status=ImageJob.Status.SUCCEEDED):
                raise RuntimeError("the job was failed while its images were stored")
            usage_record_create(
                owner_id=job.owner_id,
                api_key_id=job.api_key_id,
                route=job.route,
                model=job.model,
                images=job.n,
                latency_ms=latency_ms,
            )
        return rows
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise


def image_generation_run(*, job_id: str) -> None:
    """queued → running (only one task ever runs a job), generate, store and bill; failures end the job with the
    error its caller will see."""
    started = timezone.now()
    if not ImageJob.objects.filter(pk=job_id, status=ImageJob.Status.QUEUED).update(
        status=ImageJob.Status.RUNNING, started_at=started, heartbeat_at=started
    ):
        return
    job = ImageJob.objects.get(pk=job_id)
    clock = time.monotonic()
    try:
        endpoint = selectors.image_model_get(model=job.model)
        generated = _generate(endpoint, job)
        if len(generated.pngs) != job.n:
            raise RuntimeError(f"asked for {job.n} images, got {len(generated.pngs)}")
        _store(job, generated, latency_ms=int((time.monotonic() - clock) * 1000))
    except SoftTimeLimitExceeded:
        _fail(
            job_id,
            code="timeout",
            http_status=504,
            message=f"The generation took longer than {settings.IMAGES_TIME_LIMIT_S} s.",
        )
        return
    except (RuntimeErrorBase, ValueError) as exc:
        error = to_domain_error(exc)
        _fail(job_id, code=error.code, http_status=status_of(error), message=error.message, param=error.param or "")
        return
    except Exception as exc:
        logger.exception("image generation %s failed", job_id)
        _fail(job_id, code="generation_failed", http_status=503, message=f"The image generation failed: {exc}")
        return


def image_jobs_fail_stale() -> int:
    stale = list(selectors.image_stale_jobs().values_list("pk", flat=True))
    return sum(
        _fail(job_id, code=WORKER_LOST, http_status=503, message="The worker running this generation stopped.")
        for job_id in stale
    )


def image_generation_delete(*, job: ImageJob) -> None:
    """Delete a finished generation, its images' rows and every image file and thumbnail (a generation still
    queued or running is a ``Conflict``)."""
    finished_job_delete(job=job)
