"""Writes: plugins, uploads and imports, ingestion into the per-plugin index, deletion, reindexing and built-ins.

``plugin_search`` (a read) lives in ``apps.plugins.selectors`` and is re-exported here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.core import storage
from apps.core.dispatch import enqueue
from apps.plugins import dense, indexes, segments
from apps.plugins.models import Chunk, Document, IngestRun, Plugin
from apps.plugins.parsing import SUPPORTED_EXTENSIONS, ParsedDocument, parse_file
from apps.plugins.selectors import (
    plugin_search,
)
from workers.errors import Conflict, DomainError, InvalidRequest, PayloadTooLarge
from workers.retrieval import documents as corpus_documents
from workers.retrieval.chunking import chunk_document
from workers.retrieval.documents import Document as IndexDocument
from workers.retrieval.profiles import default_weights, get_profile

__all__ = ["plugin_search"]

logger = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
# In loading order: wiki first (the default local search provider, a few minutes), law last (embedding its
# 66k chunks takes the longest).
BUILTINS: dict[str, tuple[str, str]] = {
    "wiki": ("Wiki", "Encyclopedia passages in Chinese and English."),
    "finance": ("Finance", "Annual-report excerpts: narrative paragraphs and financial tables."),
    "law": ("Law", "PRC laws, regulations and judicial interpretations, one article per passage."),
}
DEFAULT_TOP_K = 5


# --- Plugins --------------------------------------------------------------------------------------------


def default_params(*, kind: str) -> dict[str, Any]:
    tfidf, embedding = default_weights(kind=kind)
    return {
        "top_k": DEFAULT_TOP_K,
        "tfidf_weight": tfidf,
        "embedding_weight": embedding,
        "prompt_prefix": "",
        "show_search_result": False,
    }


def _check_kind(kind: str) -> str:
    if kind not in Plugin.Kind.values:
        raise InvalidRequest(f"kind must be one of {', '.join(Plugin.Kind.values)}.", param="kind")
    return kind


def plugin_create(*, owner: AbstractUser, name: str, description: str = "", kind: str = "generic") -> Plugin:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidRequest("name must be 1 to 100 characters.", param="name")
    _check_kind(kind)
    plugin = Plugin(
        owner=owner,
        name=name,
        description=description or "",
        kind=kind,
        params=default_params(kind=kind),
        embedding_model=dense.default_embedding_model_name(),
    )
    plugin.slug = slugify(name, allow_unicode=True)[:100] or plugin.id
    if Plugin.objects.filter(owner=owner, slug=plugin.slug).exists():
        raise Conflict(f"You already have a plugin named {name!r}.", code="plugin_exists", param="name")
    try:
        with transaction.atomic():
            plugin.save()
    except IntegrityError:
        raise Conflict(f"You already have a plugin named {name!r}.", code="plugin_exists", param="name") from None
    return plugin


def _delete_files(documents: Iterable[Document]) -> None:
    for document in documents:
        if document.file:
            document.file.delete(save=False)


def plugin_delete(*, plugin: Plugin) -> None:
    """Delete a plugin, its documents and its index directory."""
    plugin_id = plugin.pk
    with indexes.write_lock(plugin_id=plugin_id):
        _delete_files(plugin.documents.exclude(file=""))
        plugin.delete()
        indexes.remove(plugin_id=plugin_id)


def builtin_plugin_ensure(*, kind: str) -> Plugin:
    name, description = BUILTINS[kind]
    plugin = Plugin.objects.filter(owner__isnull=True, slug=kind).first()
    if plugin is None:
        plugin = Plugin.objects.create(
            owner=None,
            builtin=True,
            slug=kind,
            name=name,
            description=description,
            kind=kind,
            params=default_params(kind=kind),
            embedding_model=dense.default_embedding_model_name(),
        )
    return plugin


# --- Documents in ---------------------------------------------------------------------------------------


def _upsert_documents(*, plugin: Plugin, parsed: Sequence[ParsedDocument], skip_unchanged: bool) -> list[Document]:
    """Create or replace the documents (by external id) and queue them in a new ingest run (inside a transaction);
    unchanged processed documents are left alone when ``skip_unchanged``."""
    existing = {d.external_id: d for d in plugin.documents.filter(external_id__in=[p.external_id for p in parsed])}
    queued: list[Document] = []
    run = IngestRun.objects.create(plugin=plugin)
    for item in parsed:
        document = existing.get(item.external_id)
        if (
            skip_unchanged
            and document is not None
            and document.status == Document.Status.PROCESSED
            and document.content_hash == item.content_hash
        ):
            continue
        document = document or Document(plugin=plugin, external_id=item.external_id)
        if document.file:
            document.file.delete(save=False)
        document.run, document.title, document.url, document.meta = run, item.title, item.url, item.meta
        document.text, document.source, document.content_hash = item.text, item.source, item.content_hash
        document.status, document.error, document.chunk_count = Document.Status.QUEUED, "", 0
        if item.blob is not None:
            document.file.save(f"{document.id}.pdf", ContentFile(item.blob), save=False)
        document.save()
        queued.append(document)
    if not queued:
        run.delete()
        return []
    run.total = len(queued)
    run.save(update_fields=["total"])
    Plugin.objects.filter(pk=plugin.pk).update(status=Plugin.Status.INDEXING)
    return queued


def _failed_document(*, plugin: Plugin, name: str, error: str) -> Document:
    document, _ = Document.objects.update_or_create(
        plugin=plugin,
        external_id=name,
        defaults={
            "source": name,
            "title": Path(name).stem,
            "text": "",
            "status": Document.Status.FAILED,
            "error": error,
            "chunk_count": 0,
            "run": None,
        },
    )
    return document


def documents_upload(*, plugin: Plugin, uploads: Sequence[UploadedFile]) -> list[Document]:
    """Check every file, then store them all and queue their ingestion; any bad file rejects the whole request
    (4xx naming it) with nothing stored."""
    if not uploads:
        raise InvalidRequest("Send one or more files as multipart field `file`.", param="file")
    if len(uploads) > settings.PLUGINS_MAX_FILES_PER_UPLOAD:
        raise InvalidRequest(f"At most {settings.PLUGINS_MAX_FILES_PER_UPLOAD} files per request.", param="file")
    parsed: list[ParsedDocument] = []
    for position, upload in enumerate(uploads):
        param = "file" if len(uploads) == 1 else f"file[{position}]"
        if upload.size > settings.PLUGINS_MAX_UPLOAD_BYTES:  # before reading it
            raise PayloadTooLarge(
                f"{upload.name} is larger than the limit of {settings.PLUGINS_MAX_UPLOAD_BYTES} bytes.",
                code="file_too_large",
                param=param,
            )
        upload.seek(0)
        parsed += parse_file(
            name=upload.name or "", data=upload.read(), param=param, max_bytes=settings.PLUGINS_MAX_UPLOAD_BYTES
        )
    with transaction.atomic():
        queued = _upsert_documents(plugin=plugin, parsed=_last_wins(parsed), skip_unchanged=False)
        if queued:
            enqueue(_ingest_task(), queued[0].run_id)
    return queued


def _last_wins(parsed: Sequence[ParsedDocument]) -> list[ParsedDocument]:
    return list({item.external_id: item for item in parsed}.values())


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InvalidRequest(f"{path} is neither a file nor a directory.", param="path")
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS)


def documents_import(
    *,
    plugin: Plugin,
    path: Path,
    progress: Progress | None = None,
    skip_unchanged: bool = True,
    dense_build_in_background: bool = True,
) -> tuple[IngestRun | None, list[Document]]:
    """Import a file or a directory's supported files and ingest them here (a command's work): a bad file is
    recorded as a failed document and the rest goes in. Returns the run (None when nothing changed) and the
    documents that failed before ingestion."""
    parsed: list[ParsedDocument] = []
    rejected: list[Document] = []
    for file_path in _files_under(Path(path)):
        try:
            parsed += parse_file(
                name=file_path.name, data=file_path.read_bytes(), max_bytes=settings.PLUGINS_MAX_UPLOAD_BYTES
            )
        except DomainError as exc:
            rejected.append(_failed_document(plugin=plugin, name=file_path.name, error=exc.message))
    with transaction.atomic():
        queued = _upsert_documents(plugin=plugin, parsed=_last_wins(parsed), skip_unchanged=skip_unchanged)
    if not queued:
        return None, rejected
    run_id = queued[0].run_id
    ingest_run_process(run_id=run_id, progress=progress, dense_build_in_background=dense_build_in_background)
    return IngestRun.objects.get(pk=run_id), rejected


# --- Ingestion ------------------------------------------------------------------------------------------


def _document_text(document: Document) -> str:
    """The text to index; extracts a stored PDF. Raises ValueError with the reason for a document to fail."""
    if document.file and not document.text:
        from apps.text.services.pdf2text import pdf_extract_text

        try:
            result = pdf_extract_text(path=str(storage.local_path(name=document.file.name)))
        finally:
            storage.evict(name=document.file.name)  # a copy from shared storage is not kept once read
        if not result.succeeded:
            code = getattr(result.error_code, "value", result.error_code)
            raise ValueError(f"PDF text extraction failed ({code}): {result.error_message}")
        document.text = result.text
    if not document.text.strip():
        raise ValueError("The document has no extractable text.")
    return document.text


def _chunk_rows(*, plugin: Plugin, document: Document) -> list[Chunk]:
    profile = get_profile(kind=plugin.kind)
    chunks = chunk_document(
        text=document.text,
        title=document.title,
        kind=profile.chunk_kind,
        max_tokens=profile.max_tokens,
        overlap=profile.overlap,
    )
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


def document_delete(*, document: Document) -> None:
    """Remove a document from its plugin's index (no rebuild) and delete it."""
    plugin = document.plugin
    with indexes.write_lock(plugin_id=plugin.pk):
        index = indexes.open_index(plugin=plugin)
        if index.delete_document(external_id=document.external_id):
            indexes.commit(plugin=plugin, index=index)
        _delete_files([document])
        document.delete()


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


# --- Built-ins ------------------------------------------------------------------------------------------


def _corpus_records(path: Path) -> list[ParsedDocument]:
    return parse_file(name=path.name, data=path.read_bytes(), max_bytes=1 << 40)


def builtins_load(
    *,
    corpora_dir: Path | None = None,
    only: Sequence[str] | None = None,
    progress_for: Callable[[str], Progress | None] | None = None,
    log: Callable[[str], None] = logger.info,
) -> dict[str, int]:
    """Create the built-in plugins and bring them in line with their corpora (``<kind>.jsonl``): new and changed
    documents are ingested, unchanged ones skipped (running it again is cheap) and documents no longer in the
    file removed. All of them go in on the sparse side first, so every built-in answers searches within minutes;
    then each one's dense side is embedded here. Returns documents ingested per plugin."""
    directory = Path(corpora_dir or corpus_documents.default_corpora_dir())
    kinds = list(only or BUILTINS)
    unknown = [kind for kind in kinds if kind not in BUILTINS]
    if unknown:
        raise InvalidRequest(
            f"Unknown built-in plugin(s) {', '.join(unknown)}; known: {', '.join(BUILTINS)}.", param="only"
        )
    loaded: dict[str, int] = {}
    plugins: list[Plugin] = []
    for kind in kinds:
        path = directory / f"{kind}.jsonl"
        if not path.exists():
            log(f"{kind}: {path} not found, skipped")
            continue
        plugin = builtin_plugin_ensure(kind=kind)
        plugins.append(plugin)
        records = _corpus_records(path)
        removed = _documents_remove_missing(plugin=plugin, keep={record.external_id for record in records})
        if removed:
            log(f"{kind}: removed {removed} document(s) no longer in {path.name}")
        with transaction.atomic():
            queued = _upsert_documents(plugin=plugin, parsed=records, skip_unchanged=True)
        loaded[kind] = len(queued)
        if not queued:
            log(f"{kind}: up to date ({plugin.documents.count()} documents)")
            continue
        log(f"{kind}: ingesting {len(queued)} documents")
        ingest_run_process(
            run_id=queued[0].run_id,
            progress=progress_for(kind) if progress_for else None,
            dense_build_in_background=False,
        )
    for plugin in plugins:
        plugin.refresh_from_db()
        log(f"{plugin.slug}: embedding (searchable by BM25 meanwhile)")
        dense.dense_build(
            plugin_id=plugin.pk, progress=progress_for(f"{plugin.slug} embeddings") if progress_for else None
        )
    return loaded


def _documents_remove_missing(*, plugin: Plugin, keep: set[str]) -> int:
    """Delete the plugin's documents whose external id is not in ``keep`` (index first, then rows)."""
    gone = list(plugin.documents.exclude(external_id__in=keep))
    if not gone:
        return 0
    with indexes.write_lock(plugin_id=plugin.pk):
        index = indexes.open_index(plugin=plugin)
        changed = [index.delete_document(external_id=document.external_id) for document in gone]
        if any(changed):
            indexes.commit(plugin=plugin, index=index)
        _delete_files(gone)
        Document.objects.filter(pk__in=[document.pk for document in gone]).delete()
    return len(gone)


def builtins_missing(*, only: Sequence[str] | None = None) -> list[str]:
    """Built-ins not completely loaded: no plugin, no processed document, or a dense side still to embed."""
    return [
        kind
        for kind in (only or BUILTINS)
        if not Document.objects.filter(
            plugin__owner__isnull=True, plugin__slug=kind, status=Document.Status.PROCESSED
        ).exists()
        or Plugin.objects.filter(owner__isnull=True, slug=kind).exclude(dense_status=Plugin.DenseStatus.READY).exists()
    ]


def _ingest_task() -> Any:
    from apps.plugins.tasks import ingest_run_task

    return ingest_run_task


def plugin_reindex_enqueue(*, plugin: Plugin) -> None:
    from apps.plugins.tasks import reindex_task

    enqueue(reindex_task, plugin.pk)
