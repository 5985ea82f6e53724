"""Documents in and out of a plugin: uploads (checked, stored, queued for ingestion), imports from disk (a
command's work, ingested at once) and deletion."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from apps.core.dispatch import enqueue
from apps.plugins import indexes
from apps.plugins.models import Document, IngestRun, Plugin
from apps.plugins.services.catalogue import document_files_delete
from apps.plugins.services.ingestion import Progress, ingest_run_process
from apps.plugins.uploads import uploads_parse
from workers.errors import DomainError, InvalidRequest
from workers.retrieval.parsing import SUPPORTED_EXTENSIONS, ParsedDocument, parse_file


def documents_queue(
    *, plugin: Plugin, parsed: Sequence[ParsedDocument], skip_unchanged: bool
) -> tuple[IngestRun | None, list[Document]]:
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
        return None, []
    run.total = len(queued)
    run.save(update_fields=["total"])
    Plugin.objects.filter(pk=plugin.pk).update(status=Plugin.Status.INDEXING)
    return run, queued


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
    parsed = [document for document, _ in uploads_parse(uploads=uploads)]
    with transaction.atomic():
        run, queued = documents_queue(plugin=plugin, parsed=_last_wins(parsed), skip_unchanged=False)
        if run is not None:
            enqueue(_ingest_task(), run.pk)
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
        run, _ = documents_queue(plugin=plugin, parsed=_last_wins(parsed), skip_unchanged=skip_unchanged)
    if run is None:
        return None, rejected
    ingest_run_process(run_id=run.pk, progress=progress, dense_build_in_background=dense_build_in_background)
    run.refresh_from_db()
    return run, rejected


def document_delete(*, document: Document) -> None:
    """Remove a document from its plugin's index (no rebuild) and delete it."""
    plugin = document.plugin
    with indexes.write_lock(plugin_id=plugin.pk):
        index = indexes.open_index(plugin=plugin)
        if index.delete_document(external_id=document.external_id):
            indexes.commit(plugin=plugin, index=index)
        document_files_delete([document])
        document.delete()


def _ingest_task() -> Any:
    from apps.plugins.tasks import ingest_run_task

    return ingest_run_task
