"""The built-in plugins (wiki, finance, law): created on demand and kept in line with their corpora."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from django.db import transaction

from apps.plugins import dense, indexes
from apps.plugins.models import Document, Plugin
from apps.plugins.services.catalogue import BUILTINS, default_params, document_files_delete
from apps.plugins.services.documents import documents_queue
from apps.plugins.services.ingestion import Progress, ingest_run_process
from workers.errors import InvalidRequest
from workers.retrieval import documents as corpus_documents
from workers.retrieval.parsing import ParsedDocument, parse_file

logger = logging.getLogger(__name__)


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
            run, queued = documents_queue(plugin=plugin, parsed=records, skip_unchanged=True)
        loaded[kind] = len(queued)
        if run is None:
            log(f"{kind}: up to date ({plugin.documents.count()} documents)")
            continue
        log(f"{kind}: ingesting {len(queued)} documents")
        ingest_run_process(
            run_id=run.pk,
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
        document_files_delete(gone)
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
