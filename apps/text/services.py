"""pdf2text and summarization: submitting jobs (uploads checked before anything is stored), running them (the
Celery tasks in ``tasks.py`` are one-line calls into here) and failing the ones whose worker vanished.

Text extraction for other apps (e.g. rethink's document ingestion) is ``pdf_extract_text``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import PurePath
from queue import SimpleQueue
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.chat.runtime_errors import RUNTIME_ERRORS, to_api_error
from apps.chat.selectors import chat_model_get, local_model_spec
from apps.core import storage
from apps.core.errors import ApiError
from apps.text import notify, selectors
from apps.text.models import (
    JobStatus,
    Pdf2TextJob,
    SummarizationJob,
    TextJob,
    new_pdf2text_id,
    new_summarization_id,
)
from apps.text.summarize import ContextTooSmallError, Progress, Step, TooManyRoundsError, detect_language, summarize
from apps.usage.services import usage_record
from workers.pdf import PageRangeError, PdfResult, extract_pdf, inspect_pdf, parse_page_ranges, select_pages
from workers.runtime.specs import ChatMessage, ModelSpec, SamplingParams

logger = logging.getLogger(__name__)
T = TypeVar("T")
J = TypeVar("J", bound=TextJob)

PDF_MAGIC = b"%PDF-"
SNIFF_BYTES = 1024
"""The PDF header may follow some junk (the spec tolerates it, readers look this far)."""
TEXT_FILE_SUFFIXES = {".txt", ".text", ".md", ".markdown"}
WORKER_LOST = "worker_lost"


# --- Extraction for any caller ----------------------------------------------------------------------------

def pdf_extract_text(
    *, path: str | os.PathLike[str], password: str | None = None, pages: str | None = None, layout: bool = False,
    on_start: Callable[[int], None] | None = None,
) -> PdfResult:
    """The text of a PDF, extracted in a time- and memory-limited child process with the platform's limits
    (PDF2TEXT_TIMEOUT_S, PDF2TEXT_MEMORY_MB). Never raises for a bad file: see ``PdfResult.error_code``."""
    return extract_pdf(path=path, password=password, pages=pages, layout=layout,
                       timeout_s=settings.PDF2TEXT_TIMEOUT_S, memory_mb=settings.PDF2TEXT_MEMORY_MB,
                       on_start=on_start)


def looks_like_pdf(head: bytes) -> bool:
    """A PDF header within the first 1024 bytes; a damaged PDF still passes (its job says what is wrong)."""
    return PDF_MAGIC in head[:SNIFF_BYTES]


# --- Uploads ----------------------------------------------------------------------------------------------

def _head(upload: UploadedFile) -> bytes:
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    return head


def _check_size(upload: UploadedFile, *, max_bytes: int) -> None:
    if not upload.size:
        raise ApiError("The uploaded file is empty.", code="empty_file", param="file")
    if upload.size > max_bytes:
        raise file_too_large(max_bytes=max_bytes)


def file_too_large(*, max_bytes: int) -> ApiError:
    return ApiError(f"The file is larger than the limit of {max_bytes} bytes.", code="file_too_large", param="file",
                    status_code=413)


def _clean_filename(name: str | None, *, default: str) -> str:
    base = PurePath((name or "").replace("\\", "/")).name
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:255] or default


def _check_page_selection(pages: str) -> None:
    try:
        parse_page_ranges(spec=pages)
    except PageRangeError as exc:
        raise ApiError(str(exc), code="invalid_page_range", param="pages") from None


def _check_pdf_pages(*, path: str, password: str, pages: str) -> int | None:
    """Page limit and page selection against the document; its page count, when that can be read (not for an
    encrypted file without its password, nor a damaged one: their jobs report why)."""
    info = inspect_pdf(path=path, password=password or None, timeout_s=settings.PDF2TEXT_INSPECT_TIMEOUT_S,
                       memory_mb=settings.PDF2TEXT_MEMORY_MB)
    if not info.succeeded or info.page_count is None:
        return None
    if info.page_count > settings.PDF2TEXT_MAX_PAGES:
        raise ApiError(f"The document has {info.page_count} pages; the limit is {settings.PDF2TEXT_MAX_PAGES}.",
                       code="too_many_pages", param="file")
    if pages:
        try:
            select_pages(ranges=parse_page_ranges(spec=pages), page_count=info.page_count)
        except PageRangeError as exc:
            raise ApiError(str(exc), code="invalid_page_range", param="pages") from None
    return info.page_count


@dataclass
class _StoredUpload:
    name: str

    @property
    def path(self) -> str:
        return str(storage.local_path(name=self.name))

    def delete(self) -> None:
        storage.evict(name=self.name)
        default_storage.delete(self.name)


def _create_with_file(*, upload: UploadedFile, name: str, check: Callable[[str], T],
                      create: Callable[[str, T], J]) -> J:
    """Store ``upload``, run ``check`` on the stored file and ``create`` the job row from what it found; on any
    failure the file goes again, so a refused upload leaves neither a row nor a file behind."""
    stored = _StoredUpload(default_storage.save(name, upload))
    try:
        try:
            found = check(stored.path)
        finally:
            storage.evict(name=stored.name)
        with transaction.atomic():
            return create(stored.name, found)
    except BaseException:
        stored.delete()
        raise


def _enqueue(task: Any, model: type[TextJob], job_id: str) -> None:
    try:
        task.delay(job_id)
    except Exception as exc:  # the broker is down: say so on the job rather than leave it queued forever
        logger.exception("could not queue %s", job_id)
        _finish(model.objects.filter(pk=job_id, status=JobStatus.QUEUED), status=JobStatus.FAILED,
                error_code="queue_unavailable", error_message=f"The job could not be queued: {exc}")


# --- pdf2text ---------------------------------------------------------------------------------------------

def pdf2text_create(
    *, owner: AbstractUser, api_key_id: str | None, upload: UploadedFile, password: str = "", pages: str = "",
    layout: bool = False,
) -> Pdf2TextJob:
    """Check the upload (size, PDF header, page selection, page count) and queue its extraction."""
    _check_size(upload, max_bytes=settings.PDF2TEXT_MAX_BYTES)
    if not looks_like_pdf(_head(upload)):
        raise ApiError("The file is not a PDF: no %PDF- header in its first 1024 bytes.", code="invalid_pdf",
                       param="file")
    if pages:
        _check_page_selection(pages)
    job_id = new_pdf2text_id()

    def create(name: str, page_count: int | None) -> Pdf2TextJob:
        return Pdf2TextJob.objects.create(
            id=job_id, owner=owner, api_key_id=api_key_id, file=name, size_bytes=upload.size,
            filename=_clean_filename(upload.name, default="document.pdf"), password=password, pages=pages,
            layout=layout, page_count=page_count,
        )

    job = _create_with_file(upload=upload, name=f"text/pdf2text/{job_id}.pdf",
                            check=lambda path: _check_pdf_pages(path=path, password=password, pages=pages),
                            create=create)
    from apps.text.tasks import pdf2text_task

    transaction.on_commit(partial(_enqueue, pdf2text_task, Pdf2TextJob, job.pk))
    job.refresh_from_db()  # without a broker the job has already run
    return job


def _claim(model: type[TextJob], job_id: str) -> bool:
    """queued → running, atomically: only one task ever runs a job, and a repeated delivery does nothing."""
    now = timezone.now()
    return bool(model.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now))


def _finish(queryset: QuerySet[Any], *, status: JobStatus, error_code: str = "", error_message: str = "",
            **fields: Any) -> int:
    """Ends the job unless something else ended it first (e.g. the stale-job sweep); forgets its password."""
    now = timezone.now()
    ids = list(queryset.values_list("pk", flat=True)[:1000])
    ended = queryset.filter(pk__in=ids).update(
        status=status, error_code=error_code, error_message=error_message[:2000], finished_at=now,
        heartbeat_at=now, password="", **fields)
    if ended:
        for job_id in ids:
            transaction.on_commit(partial(notify.job_finished, job_id=job_id))
    return ended


def pdf2text_run(*, job_id: str) -> None:
    if not _claim(Pdf2TextJob, job_id):
        return
    job = Pdf2TextJob.objects.get(pk=job_id)
    running = Pdf2TextJob.objects.filter(pk=job_id, status=JobStatus.RUNNING)

    def on_start(pid: int) -> None:
        running.update(child_pid=pid, heartbeat_at=timezone.now())

    try:
        result = _extract_in_parts(path=str(storage.local_path(name=job.file.name)), password=job.password or None,
                                   pages=job.pages or None, layout=job.layout, page_count=job.page_count,
                                   on_start=on_start)
    except SoftTimeLimitExceeded:
        _finish(running, status=JobStatus.FAILED, error_code="timeout",
                error_message="The job ran past its time limit and was stopped.")
        return
    except Exception as exc:
        logger.exception("pdf2text job %s failed", job_id)
        _finish(running, status=JobStatus.FAILED, error_code="internal_error",
                error_message=f"{type(exc).__name__}: {exc}")
        return
    finally:
        storage.evict(name=job.file.name)  # a copy from shared storage is not kept once read
    body = {"pages": [page.to_dict() for page in result.pages], "metadata": result.metadata.to_dict()}
    if result.succeeded and (result.page_count or 0) > settings.PDF2TEXT_MAX_PAGES:
        # Only when the upload-time count failed (e.g. it ran out of time) does the limit show this late.
        _finish(running, status=JobStatus.FAILED, error_code="too_many_pages", page_count=result.page_count,
                error_message=f"The document has {result.page_count} pages; the limit is "
                              f"{settings.PDF2TEXT_MAX_PAGES}.", result={"pages": [], "metadata": body["metadata"]})
    elif result.succeeded:
        _finish(running, status=JobStatus.SUCCEEDED, page_count=result.page_count, result=body)
    else:
        assert result.error_code is not None
        _finish(running, status=JobStatus.FAILED, error_code=result.error_code.value,
                error_message=result.error_message or "", page_count=result.page_count, result=body)


def page_parts(*, pages: str | None, page_count: int | None) -> list[str | None]:
    """The page selection cut into consecutive parts for parallel extraction: one part per
    PDF2TEXT_PAGES_PER_CHILD selected pages, at most PDF2TEXT_MAX_CHILDREN; ``[pages]`` when not worth it or
    when the page count is unknown (the one child then reports whatever is wrong with the file)."""
    if page_count is None:
        return [pages]
    try:
        selected = select_pages(ranges=parse_page_ranges(spec=pages or f"1-{page_count}"), page_count=page_count)
    except PageRangeError:
        return [pages]
    count = min(settings.PDF2TEXT_MAX_CHILDREN, len(selected) // max(1, settings.PDF2TEXT_PAGES_PER_CHILD))
    if count < 2:
        return [pages]
    size, extra = divmod(len(selected), count)
    parts, start = [], 0
    for index in range(count):
        end = start + size + (index < extra)
        parts.append(_ranges(selected[start:end]))
        start = end
    return parts


def _ranges(pages: list[int]) -> str:
    runs: list[list[int]] = []
    for page in pages:
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def _extract_in_parts(*, path: str, password: str | None, pages: str | None, layout: bool, page_count: int | None,
                      on_start: Callable[[int], None]) -> PdfResult:
    """``pdf_extract_text``, with a long document's pages shared out between several child processes at once
    (each opens the file and extracts its part; the parts are joined in page order). The first part that fails
    decides the outcome. ``on_start`` is called in this thread, for every child."""
    parts = page_parts(pages=pages, page_count=page_count)
    if len(parts) == 1:
        return pdf_extract_text(path=path, password=password, pages=pages, layout=layout, on_start=on_start)
    started: SimpleQueue[int] = SimpleQueue()
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="pdf2text") as pool:
        futures = [pool.submit(pdf_extract_text, path=path, password=password, pages=part, layout=layout,
                               on_start=started.put) for part in parts]
        pending, reported = set(futures), 0
        while pending:
            # Poll for child PIDs only until every part has reported its own.
            _, pending = wait(pending, timeout=0.05 if reported < len(parts) else None, return_when=FIRST_COMPLETED)
            while not started.empty():
                reported += 1
                on_start(started.get())
        results = [future.result() for future in futures]
    failed = next((result for result in results if not result.succeeded), None)
    if failed is not None:
        return failed
    return PdfResult(status=results[0].status, page_count=results[0].page_count,
                     pages=[page for result in results for page in result.pages], metadata=results[0].metadata)


# --- Summarization ----------------------------------------------------------------------------------------

def _decode_text_file(data: bytes) -> str:
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ApiError("The file is binary, not text.", code="unsupported_file_type", param="file")
    for encoding in ("utf-8-sig", "utf-16", "gb18030") if data.startswith((b"\xff\xfe", b"\xfe\xff")) else (
            "utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ApiError("The text file is neither UTF-8 nor GB18030.", code="invalid_text_encoding", param="file")


def _check_text(text: str, *, param: str) -> str:
    text = text.replace("\x00", "")
    if not text.strip():
        raise ApiError("There is no text to summarise.", code="empty_text", param=param)
    if len(text) > settings.SUMMARIZATION_MAX_INPUT_CHARS:
        raise ApiError(f"The text is longer than the limit of {settings.SUMMARIZATION_MAX_INPUT_CHARS} characters.",
                       code="input_too_long", param=param, status_code=413)
    return text


def summarization_create(
    *, owner: AbstractUser, api_key_id: str | None, upload: UploadedFile | None = None, text: str | None = None,
    model: str | None = None, max_length: int | None = None, language: str = "", password: str = "",
) -> SummarizationJob:
    """Check the input (a PDF, a .txt/.md file or text) and the model, and queue the summary."""
    if (upload is None) == (text is None):
        raise ApiError("Send either a file (multipart) or text.", param="file" if upload is None else "text")
    served = chat_model_get(user=owner, model=model)
    job_id = new_summarization_id()
    fields: dict[str, Any] = {
        "id": job_id, "owner": owner, "api_key_id": api_key_id, "model": served.id, "max_length": max_length,
        "language": language, "password": password,
    }
    if text is not None:
        with transaction.atomic():
            job = SummarizationJob.objects.create(
                source=SummarizationJob.Source.TEXT, input_text=_check_text(text, param="text"), **fields)
    else:
        assert upload is not None
        job = _summarization_create_from_file(upload=upload, fields=fields)
    from apps.text.tasks import summarization_task

    transaction.on_commit(partial(_enqueue, summarization_task, SummarizationJob, job.pk))
    job.refresh_from_db()
    return job


def _summarization_create_from_file(*, upload: UploadedFile, fields: dict[str, Any]) -> SummarizationJob:
    _check_size(upload, max_bytes=settings.SUMMARIZATION_MAX_BYTES)
    filename = _clean_filename(upload.name, default="document")
    suffix = PurePath(filename).suffix.lower()
    if looks_like_pdf(_head(upload)):
        source, input_text, stored_suffix = SummarizationJob.Source.PDF, "", ".pdf"

        def check(path: str) -> int | None:
            return _check_pdf_pages(path=path, password=fields["password"], pages="")
    elif suffix == ".pdf":
        raise ApiError("The file is not a PDF: no %PDF- header in its first 1024 bytes.", code="invalid_pdf",
                       param="file")
    elif suffix in TEXT_FILE_SUFFIXES or (upload.content_type or "").startswith("text/"):
        upload.seek(0)
        input_text = _check_text(_decode_text_file(upload.read()), param="file")
        upload.seek(0)
        source, stored_suffix = SummarizationJob.Source.TEXT_FILE, suffix if suffix in TEXT_FILE_SUFFIXES else ".txt"

        def check(path: str) -> int | None:
            return None
    else:
        raise ApiError("Send a PDF, a .txt or a .md file.", code="unsupported_file_type", param="file")

    def create(name: str, page_count: int | None) -> SummarizationJob:
        return SummarizationJob.objects.create(source=source, input_text=input_text, file=name, filename=filename,
                                               size_bytes=upload.size, **fields)

    return _create_with_file(upload=upload, name=f"text/summarization/{fields['id']}{stored_suffix}", check=check,
                             create=create)


@dataclass
class _Counter:
    """Token counts for a model: its own tokenizer when it has one locally, else about 3 UTF-8 bytes a token."""

    spec: ModelSpec

    def __post_init__(self) -> None:
        self.tokenizer = None
        if self.spec.path:
            from workers.runtime.local import load_tokenizer

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
        return len(build_prompt_ids(family=self.spec.family, tokenizer=self.tokenizer, messages=messages,
                                    max_input_tokens=10**9).input_ids)


def _generate(*, spec: ModelSpec, prompt: str, max_new_tokens: int) -> Any:
    """One answer, in this process. The summarization task already runs where chat generation runs (the serve
    queue, or the web process without a broker): ``chat_complete``'s in-process path. Going through
    ``chat_complete`` from a worker would wait on a second task from inside a task, which Celery forbids."""
    from apps.chat.selectors import serving_spec
    from workers.runtime import engine

    params = SamplingParams(temperature=0, repetition_penalty=1.1, max_new_tokens=max_new_tokens)
    try:
        return engine.generate(spec=serving_spec(spec=spec), messages=[ChatMessage(role="user", content=prompt)],
                               params=params)
    except RUNTIME_ERRORS as exc:
        raise to_api_error(exc) from exc


def summarization_run(*, job_id: str) -> None:
    if not _claim(SummarizationJob, job_id):
        return
    job = SummarizationJob.objects.select_related("owner").get(pk=job_id)
    running = SummarizationJob.objects.filter(pk=job_id, status=JobStatus.RUNNING)
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
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
            running.update(progress=progress.to_dict(), steps=[step.to_dict() for step in steps],
                           heartbeat_at=timezone.now(), **usage)

        language = job.language or detect_language(text)
        running.update(language=language, heartbeat_at=timezone.now())
        outcome = summarize(
            text=text, language=language, max_input_tokens=served.spec.max_input_tokens,
            final_tokens=final_tokens, part_tokens=final_tokens, count_prompt=counter.count_prompt,
            count=counter.count, generate=generate, on_progress=on_progress,
        )
        _finish(running, status=JobStatus.SUCCEEDED, summary=outcome.summary,
                progress={"stage": "done", "done": 1, "total": 1}, **usage)
    except ApiError as exc:
        _finish(running, status=JobStatus.FAILED, error_code=exc.error_code, error_message=str(exc.detail), **usage)
    except ContextTooSmallError as exc:
        _finish(running, status=JobStatus.FAILED, error_code="context_too_small", error_message=str(exc), **usage)
    except TooManyRoundsError as exc:
        _finish(running, status=JobStatus.FAILED, error_code="summarization_failed", error_message=str(exc),
                **usage)
    except SoftTimeLimitExceeded:
        _finish(running, status=JobStatus.FAILED, error_code="timeout",
                error_message="The job ran past its time limit and was stopped.", **usage)
    except Exception as exc:
        logger.exception("summarization job %s failed", job_id)
        _finish(running, status=JobStatus.FAILED, error_code="internal_error",
                error_message=f"{type(exc).__name__}: {exc}", **usage)
    finally:
        if usage["prompt_tokens"] or usage["completion_tokens"]:
            usage_record(owner_id=job.owner_id, api_key_id=job.api_key_id, route="/v1/summarization", model=job.model,
                         latency_ms=int((time.monotonic() - started) * 1000), **usage)


def _summarization_pdf_text(*, job: SummarizationJob, running: QuerySet[SummarizationJob]) -> str | None:
    """The PDF's text (also kept on the job), or None when extraction failed and the job has been ended."""
    try:
        result = pdf_extract_text(path=str(storage.local_path(name=job.file.name)), password=job.password or None)
    finally:
        storage.evict(name=job.file.name)
    if not result.succeeded:
        assert result.error_code is not None
        _finish(running, status=JobStatus.FAILED, error_code=result.error_code.value,
                error_message=result.error_message or "")
        return None
    text = "\n\n".join(page.text for page in result.pages)
    if not text.strip():
        _finish(running, status=JobStatus.FAILED, error_code="empty_text",
                error_message="The PDF has no text layer (scanned pages need OCR).")
        return None
    if len(text) > settings.SUMMARIZATION_MAX_INPUT_CHARS:
        _finish(running, status=JobStatus.FAILED, error_code="input_too_long",
                error_message=f"The PDF's text is longer than {settings.SUMMARIZATION_MAX_INPUT_CHARS} characters.")
        return None
    running.update(input_text=text, heartbeat_at=timezone.now())
    return text


# --- Jobs whose worker vanished ---------------------------------------------------------------------------

def text_jobs_fail_stale(*, pk: str | None = None) -> int:
    """Ends as ``failed``/``worker_lost`` every running job that has outlived its worker (see the selectors);
    with ``pk``, only that job. Run by ``text.maintenance.fail_stale_jobs`` and when a job is read."""
    now = timezone.now()
    ended = 0
    for stale, limit in (
        (selectors.pdf2text_stale_jobs(now=now),
         f"no result {settings.PDF2TEXT_TIMEOUT_S + settings.TEXT_STALE_MARGIN_S} s after it started"),
        (selectors.summarization_stale_jobs(now=now),
         f"no progress for {settings.SUMMARIZATION_HEARTBEAT_STALE_S} s"),
    ):
        if pk is not None:
            stale = stale.filter(pk=pk)
        ended += _finish(stale, status=JobStatus.FAILED, error_code=WORKER_LOST,
                         error_message=f"The worker running this job stopped before it finished ({limit}).")
    return ended


def text_job_fail_if_stale(*, job: TextJob) -> TextJob:
    if selectors.text_job_is_stale(job=job):
        text_jobs_fail_stale(pk=job.pk)
        job.refresh_from_db()
    return job
