"""Ingestion: an ingest run's queued documents indexed in batches (sparse side, then the dense side queued), and
a plugin's index rebuilt from its processed documents."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core import storage
from apps.core.dispatch import enqueue
from apps.plugins import dense, indexes, segments
from apps.plugins.models import Chunk, Document, IngestRun, Plugin
from workers.retrieval.documents import Document as IndexDocument
from workers.retrieval.profiles import get_profile

logger = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


def _document_text(document: Document) -> str:
    """The text to index; extracts a stored PDF. Raises ValueError with the reason for a document to fail."""
    if document.file and not document.text:
        name = str(document.file.name)
        from apps.text.services.pdf2text import pdf_extract_text

        try:
            result = pdf_extract_text(path=str(storage.local_path(name=name)))
        finally:
            storage.evict(name=name)  # a copy from shared storage is not kept once read
        if not result.succeeded:
            code = getattr(result.error_code, "value", result.error_code)
            raise ValueError(f"PDF text extraction failed ({code}): {result.error_message}")
        document.text = result.text
    if not document.text.strip():
        raise ValueError("The document has no extractable text.")
    return document.text


def _chunk_rows(*, plugin: Plugin, document: Document) -> list[Chunk]:
    profile = get_profile(kind=plugin.kind)
    chunks = profile.chunk(text=document.text, title=document.title)
    return [Chunk(document=document, ordinal=c.ordinal, text=c.text, start=c.start, end=c.end) for c in chunks]


def _ingest_batch(*, plugin: Plugin, index: Any, documents: list[Document]) -> tuple[int, int]:
    """Index one batch and record it; returns (failed documents, chunks added)."""
    good: list[Document] = []
    failed = 0
    for document in documents:
        try:
            _document_text(document)
            good.append(document)
        except Exception as exc:  # a bad file fails alone
            failed += 1
            Document.objects.filter(pk=document.pk).update(
                status=Document.Status.FAILED, error=str(exc)[:2000], chunk_count=0
            )
    if not good:
        return failed, 0
    added = index.add_documents(
        documents=[IndexDocument(id=d.external_id, title=d.title, text=d.text, url=d.url or None) for d in good],
        embed=False,
    )
    indexes.commit(plugin=plugin, index=index)
    with transaction.atomic():
        for document in good:
            rows = _chunk_rows(plugin=plugin, document=document)
            Chunk.objects.filter(document=document).delete()
            Chunk.objects.bulk_create(rows, batch_size=500)
            Document.objects.filter(pk=document.pk).update(
                status=Document.Status.PROCESSED, error="", chunk_count=len(rows), text=document.text
            )
    return failed, added


def ingest_run_process(
    *, run_id: str, progress: Progress | None = None, dense_build_in_background: bool = True
) -> None:
    """Index the run's queued documents in batches on the sparse side (status-guarded and idempotent: a re-run
    only picks up what is still queued, and indexing a document again replaces it), then queue the dense side's
    build (``apps.plugins.dense``) unless the caller runs it."""
    claimed = IngestRun.objects.filter(pk=run_id, status__in=[IngestRun.Status.QUEUED, IngestRun.Status.RUNNING])
    if not claimed.update(status=IngestRun.Status.RUNNING, started_at=timezone.now()):
        return
    run = IngestRun.objects.select_related("plugin").get(pk=run_id)
    plugin = run.plugin
    batch_size = settings.PLUGINS_INGEST_BATCH
    with indexes.write_lock(plugin_id=plugin.pk):
        if not Plugin.objects.filter(pk=plugin.pk).exists():
            return
        index = indexes.open_index(plugin=plugin)
        pending = list(
            run.documents.filter(status__in=[Document.Status.QUEUED, Document.Status.PROCESSING])
            .order_by("created_at", "pk")
            .values_list("pk", flat=True)
        )
        done = run.total - len(pending)
        if progress:
            progress(done, run.total)
        for start in range(0, len(pending), batch_size):
            ids = pending[start : start + batch_size]
            Document.objects.filter(pk__in=ids).update(status=Document.Status.PROCESSING)
            documents = list(Document.objects.filter(pk__in=ids).order_by("created_at", "pk"))
            try:
                failed, added = _ingest_batch(plugin=plugin, index=index, documents=documents)
            except Exception as exc:  # the index itself failed: report the batch, reload the saved copy
                logger.exception("ingest run %s: batch failed", run_id)
                Document.objects.filter(pk__in=ids).update(status=Document.Status.FAILED, error=str(exc)[:2000])
                failed, added = len(ids), 0
                index = indexes.open_index(plugin=plugin)
            done += len(ids)
            run.done, run.failed, run.chunks = done, run.failed + failed, run.chunks + added
            run.save(update_fields=["done", "failed", "chunks"])
            if progress:
                progress(done, run.total)
    run.status = IngestRun.Status.FAILED if run.total and run.failed == run.total else IngestRun.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "finished_at"])
    _refresh_status(plugin=plugin)
    if run.chunks:
        dense.dense_build_mark_queued(plugin=plugin)
        if dense_build_in_background:
            dense.dense_build_enqueue(plugin=plugin)


def _refresh_status(*, plugin: Plugin) -> None:
    active = plugin.runs.filter(status__in=[IngestRun.Status.QUEUED, IngestRun.Status.RUNNING]).exists()
    Plugin.objects.filter(pk=plugin.pk).update(status=Plugin.Status.INDEXING if active else Plugin.Status.READY)


def plugin_reindex(*, plugin: Plugin, progress: Progress | None = None) -> int:
    """Rebuild the index from the plugin's processed documents, keeping edited and disabled segments; returns
    the number of searchable chunks."""
    documents = plugin.documents.filter(status=Document.Status.PROCESSED).order_by("created_at", "pk")
    total = documents.count()
    with indexes.write_lock(plugin_id=plugin.pk):
        index = indexes.new_index(plugin=plugin)
        overrides = segments.chunk_overrides(plugin=plugin)
        done = 0
        batch: list[IndexDocument] = []
        for document in documents.iterator(chunk_size=500):
            batch.append(
                IndexDocument(
                    id=document.external_id, title=document.title, text=document.text, url=document.url or None
                )
            )
            if len(batch) >= settings.PLUGINS_INGEST_BATCH:
                index.add_documents(documents=batch, embed=False, overrides=overrides)
                done, batch = done + len(batch), []
                if progress:
                    progress(done, total)
        index.add_documents(documents=batch, embed=False, overrides=overrides)
        indexes.commit(plugin=plugin, index=index)
        if progress:
            progress(total, total)
    dense.dense_build_enqueue(plugin=plugin)
    return len(index)


def plugin_reindex_enqueue(*, plugin: Plugin) -> None:
    from apps.plugins.tasks import reindex_task

    enqueue(reindex_task, plugin.pk)
