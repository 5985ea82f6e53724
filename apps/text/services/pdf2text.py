"""pdf2text: checking an upload and queueing its extraction, running it (in parts for a long document), and
``pdf_extract_text`` for any caller (e.g. rethink's document ingestion)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from functools import partial
from queue import SimpleQueue

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from apps.core import storage
from apps.text.models import JobStatus, Pdf2TextJob, new_pdf2text_id
from apps.text.services import jobs
from workers.errors import InvalidRequest
from workers.pdf import PageRangeError, PdfResult, extract_pdf, inspect_pdf, parse_page_ranges, select_pages

logger = logging.getLogger(__name__)

PDF_MAGIC = b"%PDF-"


def pdf_extract_text(
    *,
    path: str | os.PathLike[str],
    password: str | None = None,
    pages: str | None = None,
    layout: bool = False,
    on_start: Callable[[int], None] | None = None,
) -> PdfResult:
    """The text of a PDF, extracted in a time- and memory-limited child process with the platform's limits
    (PDF2TEXT_TIMEOUT_S, PDF2TEXT_MEMORY_MB). Never raises for a bad file: see ``PdfResult.error_code``."""
    return extract_pdf(
        path=path,
        password=password,
        pages=pages,
        layout=layout,
        timeout_s=settings.PDF2TEXT_TIMEOUT_S,
        memory_mb=settings.PDF2TEXT_MEMORY_MB,
        on_start=on_start,
    )


def looks_like_pdf(head: bytes) -> bool:
    """A PDF header within the first 1024 bytes; a damaged PDF still passes (its job says what is wrong)."""
    return PDF_MAGIC in head[: jobs.SNIFF_BYTES]


def _check_page_selection(pages: str) -> None:
    try:
        parse_page_ranges(spec=pages)
    except PageRangeError as exc:
        raise InvalidRequest(str(exc), code="invalid_page_range", param="pages") from None


def check_pdf_pages(*, path: str, password: str, pages: str) -> int | None:
    """Page limit and page selection against the document; its page count, when that can be read (not for an
    encrypted file without its password, nor a damaged one: their jobs report why)."""
    info = inspect_pdf(
        path=path,
        password=password or None,
        timeout_s=settings.PDF2TEXT_INSPECT_TIMEOUT_S,
        memory_mb=settings.PDF2TEXT_MEMORY_MB,
    )
    if not info.succeeded or info.page_count is None:
        return None
    if info.page_count > settings.PDF2TEXT_MAX_PAGES:
        raise InvalidRequest(
            f"The document has {info.page_count} pages; the limit is {settings.PDF2TEXT_MAX_PAGES}.",
            code="too_many_pages",
            param="file",
        )
    if pages:
        try:
            select_pages(ranges=parse_page_ranges(spec=pages), page_count=info.page_count)
        except PageRangeError as exc:
            raise InvalidRequest(str(exc), code="invalid_page_range", param="pages") from None
    return info.page_count


def pdf2text_create(
    *,
    owner: AbstractUser,
    api_key_id: str | None,
    upload: UploadedFile,
    password: str = "",
    pages: str = "",
    layout: bool = False,
) -> Pdf2TextJob:
    """Check the upload (size, PDF header, page selection, page count) and queue its extraction."""
    jobs.check_size(upload, max_bytes=settings.PDF2TEXT_MAX_BYTES)
    if not looks_like_pdf(jobs.upload_head(upload)):
        raise InvalidRequest(
            "The file is not a PDF: no %PDF- header in its first 1024 bytes.", code="invalid_pdf", param="file"
        )
    if pages:
        _check_page_selection(pages)
    job_id = new_pdf2text_id()

    def create(name: str, page_count: int | None) -> Pdf2TextJob:
        return Pdf2TextJob.objects.create(
            id=job_id,
            owner=owner,
            api_key_id=api_key_id,
            file=name,
            size_bytes=upload.size,
            filename=jobs.clean_filename(upload.name, default="document.pdf"),
            password=password,
            pages=pages,
            layout=layout,
            page_count=page_count,
        )

    job = jobs.create_with_file(
        upload=upload,
        name=f"text/pdf2text/{job_id}.pdf",
        check=lambda path: check_pdf_pages(path=path, password=password, pages=pages),
        create=create,
    )
    from apps.text.tasks import pdf2text_task

    transaction.on_commit(partial(jobs.enqueue_job, pdf2text_task, Pdf2TextJob, job.pk))
    job.refresh_from_db()  # without a broker the job has already run
    return job


def pdf2text_run(*, job_id: str) -> None:
    if not jobs.claim(Pdf2TextJob, job_id):
        return
    job = Pdf2TextJob.objects.get(pk=job_id)
    running = Pdf2TextJob.objects.filter(pk=job_id, status=JobStatus.RUNNING)

    def on_start(pid: int) -> None:
        running.update(child_pid=pid, heartbeat_at=timezone.now())

    try:
        result = _extract_in_parts(
            path=str(storage.local_path(name=job.file.name)),
            password=job.password or None,
            pages=job.pages or None,
            layout=job.layout,
            page_count=job.page_count,
            on_start=on_start,
        )
    except SoftTimeLimitExceeded:
        jobs.fail_timed_out(running)
        return
    except Exception as exc:
        logger.exception("pdf2text job %s failed", job_id)
        jobs.fail_unexpected(running, exc)
        return
    finally:
        storage.evict(name=job.file.name)  # a copy from shared storage is not kept once read
    body = {"pages": [page.to_dict() for page in result.pages], "metadata": result.metadata.to_dict()}
    if result.succeeded and (result.page_count or 0) > settings.PDF2TEXT_MAX_PAGES:
        # Only when the upload-time count failed (e.g. it ran out of time) does the limit show this late.
        jobs.finish(
            running,
            status=JobStatus.FAILED,
            error_code="too_many_pages",
            page_count=result.page_count,
            error_message=f"The document has {result.page_count} pages; the limit is {settings.PDF2TEXT_MAX_PAGES}.",
            result={"pages": [], "metadata": body["metadata"]},
        )
    elif result.succeeded:
        jobs.finish(running, status=JobStatus.SUCCEEDED, page_count=result.page_count, result=body)
    else:
        jobs.finish(
            running,
            status=JobStatus.FAILED,
            error_code=result.failure_code,
            error_message=result.error_message or "",
            page_count=result.page_count,
            result=body,
        )


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
    parts: list[str | None] = []
    start = 0
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


def _extract_in_parts(
    *,
    path: str,
    password: str | None,
    pages: str | None,
    layout: bool,
    page_count: int | None,
    on_start: Callable[[int], None],
) -> PdfResult:
    """``pdf_extract_text``, with a long document's pages shared out between several child processes at once
    (each opens the file and extracts its part; the parts are joined in page order). The first part that fails
    decides the outcome. ``on_start`` is called in this thread, for every child."""
    parts = page_parts(pages=pages, page_count=page_count)
    if len(parts) == 1:
        return pdf_extract_text(path=path, password=password, pages=pages, layout=layout, on_start=on_start)
    started: SimpleQueue[int] = SimpleQueue()
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="pdf2text") as pool:
        futures = [
            pool.submit(pdf_extract_text, path=path, password=password, pages=part, layout=layout, on_start=started.put)
            for part in parts
        ]
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
    return PdfResult(
        status=results[0].status,
        page_count=results[0].page_count,
        pages=[page for result in results for page in result.pages],
        metadata=results[0].metadata,
    )
