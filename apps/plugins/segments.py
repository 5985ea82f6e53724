"""Segments (Dify/FastGPT-style chunk management): a processed document's chunks listed, edited, disabled and
enabled one by one, and a preview of how a plugin would chunk a text, storing nothing.

A segment is a ``Chunk`` row; the plugin's index holds the same chunk as (document external id, ordinal). A change
is made to a private copy of the index under the plugin's write lock and committed in the same transaction as the
row, so that a failure leaves both as they were. ``chunk_overrides`` gives ``plugin_reindex`` the edits and the
disabled chunks to rebuild.
"""

from __future__ import annotations

import logging
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, QuerySet

from apps.plugins import dense, indexes
from apps.plugins.models import Chunk, Document, Plugin
from apps.plugins.uploads import uploads_parse
from workers.errors import Conflict, DomainError, InvalidRequest, NotFound, PayloadTooLarge
from workers.retrieval import chunking
from workers.retrieval.catalog import ChunkOverride
from workers.retrieval.index import HybridIndex
from workers.retrieval.parsing import ParsedDocument
from workers.retrieval.profiles import get_profile

logger = logging.getLogger(__name__)

MAX_SEGMENT_CHARS = 16_000
# An edited segment may grow past the profile's chunk budget, but not without bound: the embedding model reads
# about 512 tokens, and one huge segment would dominate BM25 length normalisation.
MAX_SEGMENT_BUDGETS = 2
PREVIEW_MAX_CHUNKS = 1000
_MAX_ID_DIGITS = 18  # beyond a 64-bit row id: not found, rather than a database overflow


# --- Reads ----------------------------------------------------------------------------------------------


def segment_list(*, document: Document) -> QuerySet[Chunk]:
    return document.chunks.all()


def _row_id(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) <= _MAX_ID_DIGITS else None


def segment_get(*, document: Document, segment_id: str) -> Chunk:
    """A segment of a document the caller already owns (fetched with ``selectors.document_get``)."""
    row_id = _row_id(segment_id)
    segment = document.chunks.filter(pk=row_id).first() if row_id is not None else None
    if segment is None:
        raise NotFound("No segment with that id in this file.", code="not_found")
    return segment


def paginate_by_ordinal(queryset: QuerySet[Chunk], *, after: str | None, limit: int) -> tuple[list[Chunk], bool]:
    """In document order; ``after`` is the id of the last segment of the previous page."""
    ordered = queryset.order_by("ordinal", "pk")
    if after:
        row_id = _row_id(after)
        anchor = queryset.filter(pk=row_id).values("ordinal").first() if row_id is not None else None
        if anchor is None:
            raise InvalidRequest("No segment with that id in this list.", code="invalid_cursor", param="after")
        ordered = ordered.filter(ordinal__gt=anchor["ordinal"])
    rows = list(ordered[: limit + 1])
    return rows[:limit], len(rows) > limit


def chunk_overrides(*, plugin: Plugin) -> dict[str, dict[int, ChunkOverride]]:
    """The processed documents' edited or disabled chunks, by external id and ordinal (for rebuilding the index)."""
    rows = (
        Chunk.objects.filter(document__plugin=plugin, document__status=Document.Status.PROCESSED)
        .filter(Q(edited=True) | Q(enabled=False))
        .values_list("document__external_id", "ordinal", "text", "edited", "enabled")
    )
    overrides: dict[str, dict[int, ChunkOverride]] = defaultdict(dict)
    for external_id, ordinal, text, edited, enabled in rows:
        overrides[external_id][ordinal] = ChunkOverride(text=text if edited else None, enabled=enabled)
    return dict(overrides)


# --- Writes ---------------------------------------------------------------------------------------------


def segment_text_clean(*, plugin: Plugin, text: Any, param: str = "text") -> str:
    """``text`` as a segment's new text, or ``DomainError`` (400) saying what is wrong with it."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("text must be a non-empty string.", param=param)
    if "\x00" in text:
        raise InvalidRequest("text must not contain NUL characters.", param=param)
    budget = MAX_SEGMENT_BUDGETS * get_profile(kind=plugin.kind).max_tokens
    if len(text) > MAX_SEGMENT_CHARS or chunking.count_tokens(text=text) > budget:
        raise InvalidRequest(
            f"text is too long for a segment of this plugin: at most {MAX_SEGMENT_CHARS} characters "
            f"and {budget} tokens.",
            code="segment_too_long",
            param=param,
        )
    return text


def _apply(*, index: HybridIndex, segment: Chunk, text: str | None, enabled: bool | None) -> bool:
    """Change the index's copy of ``segment``; returns whether anything changed."""
    external_id, ordinal = segment.document.external_id, segment.ordinal

    def edit(new_text: str, embed: bool) -> bool:
        return index.edit_chunk(external_id=external_id, ordinal=ordinal, text=new_text, embed=embed)

    def switch(on: bool, embed: bool) -> bool:
        return index.set_chunk_enabled(external_id=external_id, ordinal=ordinal, enabled=on, embed=embed)

    steps: list[Callable[[bool], bool]] = []
    if text is not None:
        steps.append(partial(edit, text))
    if enabled is not None:
        # Disabling first and enabling last: an edit of a disabled chunk is only stored, so it is embedded once.
        steps.insert(0 if enabled is False else len(steps), partial(switch, enabled))
    changed = False
    try:
        for step in steps:
            changed = _embedding_fallback(step) or changed
    except KeyError:
        raise Conflict(
            "This segment is not in the plugin's index; reindex the plugin.", code="index_out_of_sync"
        ) from None
    return changed


def _embedding_fallback(step: Callable[[bool], bool]) -> bool:
    """Run ``step`` embedding at once; if the embedder fails (the index is left unchanged then), the chunk waits
    for the background build instead of failing the request."""
    try:
        return step(True)
    except KeyError:
        raise
    except Exception:
        logger.exception("segment: embedding failed; the chunk waits for the dense build")
        return step(False)


def _dense_follow(*, plugin: Plugin) -> None:
    """Chunks left without a vector: make sure a dense build will embed them (a queued or running one does)."""
    if (
        Plugin.objects.filter(pk=plugin.pk)
        .exclude(dense_status__in=[Plugin.DenseStatus.QUEUED, Plugin.DenseStatus.BUILDING])
        .exists()
    ):
        dense.dense_build_enqueue(plugin=plugin)


def _check_processed(document: Document) -> None:
    if document.status != Document.Status.PROCESSED:
        raise Conflict(
            f"The file is {document.status}; its segments can be changed once it is processed.",
            code="file_not_processed",
        )


def segment_update(*, segment: Chunk, text: str | None = None, enabled: bool | None = None) -> Chunk:
    """Edit a segment's text and/or enable or disable it; the plugin's index follows at once (BM25, and the
    vector too when the dense side is complete). Returns the updated segment."""
    if text is None and enabled is None:
        raise InvalidRequest("Send text and/or enabled.", param="text")
    if enabled is not None and not isinstance(enabled, bool):
        raise InvalidRequest("enabled must be true or false.", param="enabled")
    plugin = segment.document.plugin
    if text is not None:
        text = segment_text_clean(plugin=plugin, text=text)
    with indexes.write_lock(plugin_id=plugin.pk):
        current = Chunk.objects.select_related("document").filter(pk=segment.pk).first()
        if current is None:
            raise NotFound("No segment with that id in this file.", code="not_found")
        _check_processed(current.document)
        index = indexes.open_index(plugin=plugin)
        changed = _apply(index=index, segment=current, text=text, enabled=enabled)
        if text is not None:
            current.text = text
            current.edited = text != current.document.text[current.start : current.end]
        if enabled is not None:
            current.enabled = enabled
        with transaction.atomic():
            current.save(update_fields=["text", "edited", "enabled"])
            if changed:
                indexes.commit(plugin=plugin, index=index)
        waiting = not index.dense_ready
    if waiting:
        _dense_follow(plugin=plugin)
    return current


def segments_set_enabled(*, segments: QuerySet[Chunk], enabled: bool) -> tuple[int, int]:
    """Enable or disable many segments, one index commit per plugin; returns (changed, skipped), skipped being
    those whose file is not processed or that the index lacks."""
    by_plugin: dict[str, list[int]] = defaultdict(list)
    for segment_id, plugin_id in segments.values_list("pk", "document__plugin_id"):
        by_plugin[plugin_id].append(segment_id)
    changed = skipped = 0
    for plugin_id, segment_ids in by_plugin.items():
        plugin = Plugin.objects.filter(pk=plugin_id).first()
        if plugin is None:
            skipped += len(segment_ids)
            continue
        with indexes.write_lock(plugin_id=plugin_id):
            index = indexes.open_index(plugin=plugin)
            rows: list[Chunk] = []
            for current in Chunk.objects.select_related("document").filter(pk__in=segment_ids):
                try:
                    _check_processed(current.document)
                    if _apply(index=index, segment=current, text=None, enabled=enabled) or current.enabled != enabled:
                        current.enabled = enabled
                        rows.append(current)
                except DomainError:
                    skipped += 1
            with transaction.atomic():
                Chunk.objects.bulk_update(rows, ["enabled"])
                if rows:
                    indexes.commit(plugin=plugin, index=index)
            waiting = not index.dense_ready
        changed += len(rows)
        if waiting:
            _dense_follow(plugin=plugin)
    return changed, skipped


# --- Preview --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewDocument:
    external_id: str
    title: str
    chunk_count: int
    chunks: list[chunking.Chunk]  # the first ones, up to PREVIEW_MAX_CHUNKS over the whole preview


def _preview_text(*, parsed: ParsedDocument, param: str) -> str:
    if parsed.blob is None:
        return parsed.text
    from apps.text.services.pdf2text import pdf_extract_text

    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(parsed.blob)
        handle.flush()
        result = pdf_extract_text(path=handle.name)
    if not result.succeeded:
        code = getattr(result.error_code, "value", result.error_code)
        raise InvalidRequest(
            f"{parsed.source}: PDF text extraction failed ({code}): {result.error_message}",
            code="pdf_extraction_failed",
            param=param,
        )
    if not result.text.strip():
        raise InvalidRequest(f"{parsed.source} has no extractable text.", code="empty_file", param=param)
    return result.text


def segments_preview(
    *, plugin: Plugin, uploads: Sequence[UploadedFile] = (), text: Any = None, title: Any = None
) -> list[PreviewDocument]:
    """How the plugin's profile would chunk the uploaded files (checked and parsed as uploads are) or ``text``;
    stores nothing."""
    if bool(uploads) == (text is not None):
        raise InvalidRequest(
            "Send either files as multipart field `file` or a JSON `text`.", param="file" if uploads else "text"
        )
    sources: list[tuple[ParsedDocument, str]] = []
    if uploads:
        sources += uploads_parse(uploads=uploads)
    else:
        if not isinstance(text, str) or not text.strip():
            raise InvalidRequest("text must be a non-empty string.", param="text")
        if len(text.encode("utf-8", "surrogatepass")) > settings.PLUGINS_MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(
                f"text is larger than the limit of {settings.PLUGINS_MAX_UPLOAD_BYTES} bytes.",
                code="file_too_large",
                param="text",
            )
        if title is not None and (not isinstance(title, str) or len(title) > 500):
            raise InvalidRequest("title must be a string of at most 500 characters.", param="title")
        sources.append((ParsedDocument(external_id="", title=title or "", text=text), "text"))
    profile = get_profile(kind=plugin.kind)
    previews: list[PreviewDocument] = []
    room = PREVIEW_MAX_CHUNKS
    for parsed, param in sources:
        chunks = profile.chunk(text=_preview_text(parsed=parsed, param=param), title=parsed.title)
        previews.append(
            PreviewDocument(
                external_id=parsed.external_id, title=parsed.title, chunk_count=len(chunks), chunks=chunks[:room]
            )
        )
        room = max(0, room - len(chunks))
    return previews
