"""Summarization: checking the input (a PDF, a .txt/.md file or text) and queueing the summary, and running it
with the chat model in the process that serves it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from pathlib import PurePath
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.chat.runtime_errors import RUNTIME_ERRORS, to_domain_error
from apps.chat.selectors import chat_model_get, local_model_spec
from apps.core import storage
from apps.text.models import JobStatus, SummarizationJob, new_summarization_id
from apps.text.services import jobs
from apps.text.services.pdf2text import check_pdf_pages, looks_like_pdf, pdf_extract_text
from apps.usage.services import usage_record_create
from workers.errors import DomainError, InvalidRequest, PayloadTooLarge
from workers.runtime.specs import ChatMessage, GenerationRequest, ModelSpec, SamplingParams
from workers.text.summarize import ContextTooSmallError, Progress, Step, TooManyRoundsError, detect_language, summarize

logger = logging.getLogger(__name__)

TEXT_FILE_SUFFIXES = {".txt", ".text", ".md", ".markdown"}


def _decode_text_file(data: bytes) -> str:
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidRequest("The file is binary, not text.", code="unsupported_file_type", param="file")
    for encoding in (
        ("utf-8-sig", "utf-16", "gb18030") if data.startswith((b"\xff\xfe", b"\xfe\xff")) else ("utf-8-sig", "gb18030")
    ):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidRequest("The text file is neither UTF-8 nor GB18030.", code="invalid_text_encoding", param="file")


def _check_text(text: str, *, param: str) -> str:
    text = text.replace("\x00", "")
    if not text.strip():
        raise InvalidRequest("There is no text to summarise.", code="empty_text", param=param)
    if len(text) > settings.SUMMARIZATION_MAX_INPUT_CHARS:
        raise PayloadTooLarge(
            f"The text is longer than the limit of {settings.SUMMARIZATION_MAX_INPUT_CHARS} characters.",
            code="input_too_long",
            param=param,
        )
    return text


def summarization_create(
    *,
    owner: AbstractUser,
    api_key_id: str | None,
    upload: UploadedFile | None = None,
    text: str | None = None,
    model: str | None = None,
    max_length: int | None = None,
    language: str = "",
    password: str = "",
) -> SummarizationJob:
    """Check the input (a PDF, a .txt/.md file or text) and the model, and queue the summary."""
    if (upload is None) == (text is None):
        raise InvalidRequest("Send either a file (multipart) or text.", param="file" if upload is None else "text")
    served = chat_model_get(user=owner, model=model)
    job_id = new_summarization_id()
    fields: dict[str, Any] = {
        "id": job_id,
        "owner": owner,
        "api_key_id": api_key_id,
        "model": served.id,
        "max_length": max_length,
        "language": language,
        "password": password,
    }
    if upload is None:
        with transaction.atomic():
            job = SummarizationJob.objects.create(
                source=SummarizationJob.Source.TEXT, input_text=_check_text(text or "", param="text"), **fields
            )
    else:
        job = _summarization_create_from_file(upload=upload, fields=fields)
    from apps.text.tasks import summarization_task

    transaction.on_commit(partial(jobs.enqueue_job, summarization_task, SummarizationJob, job.pk))
    job.refresh_from_db()
    return job


def _summarization_create_from_file(*, upload: UploadedFile, fields: dict[str, Any]) -> SummarizationJob:
    jobs.check_size(upload, max_bytes=settings.SUMMARIZATION_MAX_BYTES)
    filename = jobs.clean_filename(upload.name, default="document")
    suffix = PurePath(filename).suffix.lower()
    if looks_like_pdf(jobs.upload_head(upload)):
        source, input_text, stored_suffix = SummarizationJob.Source.PDF, "", ".pdf"

        def check(path: str) -> int | None:
            return check_pdf_pages(path=path, password=fields["password"], pages="")
    elif suffix == ".pdf":
        raise InvalidRequest(
            "The file is not a PDF: no %PDF- header in its first 1024 bytes.", code="invalid_pdf", param="file"
        )
    elif suffix in TEXT_FILE_SUFFIXES or (upload.content_type or "").startswith("text/"):
        upload.seek(0)
        input_text = _check_text(_decode_text_file(upload.read()), param="file")
        upload.seek(0)
        source, stored_suffix = SummarizationJob.Source.TEXT_FILE, suffix if suffix in TEXT_FILE_SUFFIXES else ".txt"

        def check(path: str) -> int | None:
            return None
    else:
        raise InvalidRequest("Send a PDF, a .txt or a .md file.", code="unsupported_file_type", param="file")

    def create(name: str, page_count: int | None) -> SummarizationJob:
        return SummarizationJob.objects.create(
            source=source, input_text=input_text, file=name, filename=filename, size_bytes=upload.size, **fields
        )

    return jobs.create_with_file(
        upload=upload, name=f"text/summarization/{fields['id']}{stored_suffix}", check=check, create=create
    )


@dataclass
class _Counter:
    """Token counts for a model: its own tokenizer when it has one locally, else about 3 UTF-8 bytes a token."""

    spec: ModelSpec

    def __post_init__(self) -> None:
        self.tokenizer = None
        if self.spec.path:
            from workers.runtime.loading import load_tokenizer

            self.tokenizer = load_tokenizer(path=local_model_spec(self.spec).path)  # fine-tuned weights: fetched

    def count(self, text: str) -> int:
        if self.tokenizer is None:
            return (len(text.encode()) + 2) // 3
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def count_prompt(self, user_text: str) -> int:
        if self.tokenizer is None:
            return self.count(user_text) + 32
        from workers.runtime.prompts import build_prompt_ids

        messages = [ChatMessage(role="user", content=user_text)]
        return len(
            build_prompt_ids(
                family=self.spec.family, tokenizer=self.tokenizer, messages=messages, max_input_tokens=10**9
            ).input_ids
        )


def _generate(*, spec: ModelSpec, prompt: str, max_new_tokens: int) -> Any:
    """One answer, in this process. The summarization task already runs where chat generation runs (the serve
    queue, or the web process without a broker): ``chat_complete``'s in-process path. Going through
    ``chat_complete`` from a worker would wait on a second task from inside a task, which Celery forbids."""
    from apps.chat.selectors import local_model_spec, serving_spec
    from workers.runtime import engine

    params = SamplingParams(temperature=0, repetition_penalty=1.1, max_new_tokens=max_new_tokens)
    try:
        return engine.generate(
            request=GenerationRequest(
                spec=local_model_spec(serving_spec(spec=spec)),
                messages=[ChatMessage(role="user", content=prompt)],
                params=params,
            )
        )
    except RUNTIME_ERRORS as exc:
        raise to_domain_error(exc) from exc


def summarization_run(*, job_id: str) -> None:
    if not jobs.claim(SummarizationJob, job_id):
        return
    job = SummarizationJob.objects.select_related("owner").get(pk=job_id)
    running = SummarizationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING)
    usage: dict[str, Any] = {"prompt_tokens": 0, "completion_tokens": 0}
    started = time.monotonic()
    try:
        text = job.input_text
        if job.source == SummarizationJob.Source.PDF:
            text = _summarization_pdf_text(job=job, running=running)
            if text is None:
                return
        served = chat_model_get(user=job.owner, model=job.model)
        counter = _Counter(served.spec)
        final_tokens = min(job.max_length or served.spec.max_new_tokens, served.spec.max_new_tokens)

        def generate(prompt: str, max_new_tokens: int) -> str:
            result = _generate(spec=served.spec, prompt=prompt, max_new_tokens=max_new_tokens)
            usage["prompt_tokens"] += result.prompt_tokens
            usage["completion_tokens"] += result.completion_tokens
            return result.text.replace("\x00", "")

        def on_progress(progress: Progress, steps: list[Step]) -> None:
            running.update(
                progress=progress.to_dict(),
                steps=[step.to_dict() for step in steps],
                heartbeat_at=timezone.now(),
                **usage,
            )

        language = job.language or detect_language(text)
        running.update(language=language, heartbeat_at=timezone.now())
        outcome = summarize(
            text=text,
            language=language,
            max_input_tokens=served.spec.max_input_tokens,
            final_tokens=final_tokens,
            part_tokens=final_tokens,
            count_prompt=counter.count_prompt,
            count=counter.count,
            generate=generate,
            on_progress=on_progress,
        )
        ending = partial(
            jobs.finish,
            running,
            status=JobStatus.SUCCEEDED,
            summary=outcome.summary,
            progress={"stage": "done", "done": 1, "total": 1},
        )
    except DomainError as exc:
        ending = partial(jobs.finish, running, status=JobStatus.FAILED, error_code=exc.code, error_message=exc.message)
    except ContextTooSmallError as exc:
        ending = partial(
            jobs.finish, running, status=JobStatus.FAILED, error_code="context_too_small", error_message=str(exc)
        )
    except TooManyRoundsError as exc:
        ending = partial(
            jobs.finish, running, status=JobStatus.FAILED, error_code="summarization_failed", error_message=str(exc)
        )
    except SoftTimeLimitExceeded:
        ending = partial(jobs.fail_timed_out, running)
    except Exception as exc:
        logger.exception("summarization job %s failed", job_id)
        ending = partial(jobs.fail_unexpected, running, exc)
    # The tokens are billed in the transaction that ends the job: a caller who sees it finished finds them in
    # /v1/usage, and a worker dying in between cannot lose them.
    with transaction.atomic():
        ending(**usage)
        if usage["prompt_tokens"] or usage["completion_tokens"]:
            usage_record_create(
                owner_id=job.owner_id,
                api_key_id=job.api_key_id,
                route="/v1/summarization",
                model=job.model,
                latency_ms=int((time.monotonic() - started) * 1000),
                **usage,
            )


def _summarization_pdf_text(*, job: SummarizationJob, running: QuerySet[SummarizationJob]) -> str | None:
    """The PDF's text (also kept on the job), or None when extraction failed and the job has been ended."""
    name = job.file.name or ""
    try:
        result = pdf_extract_text(path=str(storage.local_path(name=name)), password=job.password or None)
    finally:
        storage.evict(name=name)
    if not result.succeeded:
        jobs.finish(
            running,
            status=JobStatus.FAILED,
            error_code=result.failure_code,
            error_message=result.error_message or "",
        )
        return None
    text = "\n\n".join(page.text for page in result.pages)
    if not text.strip():
        jobs.finish(
            running,
            status=JobStatus.FAILED,
            error_code="empty_text",
            error_message="The PDF has no text layer (scanned pages need OCR).",
        )
        return None
    if len(text) > settings.SUMMARIZATION_MAX_INPUT_CHARS:
        jobs.finish(
            running,
            status=JobStatus.FAILED,
            error_code="input_too_long",
            error_message=f"The PDF's text is longer than {settings.SUMMARIZATION_MAX_INPUT_CHARS} characters.",
        )
        return None
    running.update(input_text=text, heartbeat_at=timezone.now())
    return text
