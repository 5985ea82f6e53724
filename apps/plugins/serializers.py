"""Request shapes (input only) and ``render_*`` functions for responses."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.plugins.models import Chunk, Document, IngestRun, Plugin
from apps.rerank.serializers import RerankOptionField


class PluginCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    kind = serializers.ChoiceField(choices=Plugin.Kind.choices, required=False, default=Plugin.Kind.GENERIC)


class PluginUpdateSerializer(serializers.Serializer):
    embedding_model = serializers.CharField(
        max_length=100,
        help_text="An embedding model's id (GET /v1/models); "
        "the plugin's chunks are re-embedded in the background, and searches "
        "rank by BM25 alone until that is done.",
    )


class FilesUploadSerializer(serializers.Serializer):
    file = serializers.ListField(
        child=serializers.FileField(),
        help_text="One or more files (.md .txt .pdf .jsonl .docx); repeat the field for several.",
    )


FILTERS_HELP = (
    'Metadata filter on the documents\' meta: {"key", "op": eq|ne|in|nin|gt|gte|lt|lte|exists, '
    '"value"}, or {"and": [...]} / {"or": [...]} of filters.'
)


class SearchSerializer(serializers.Serializer):
    """Range checks happen in the service (shared with ``plugin_search``); here only types."""

    plugin = serializers.CharField()
    query = serializers.CharField(allow_blank=True, trim_whitespace=False)
    top_k = serializers.IntegerField(required=False, default=5)
    tfidf_weight = serializers.FloatField(required=False, allow_null=True, default=None)
    embedding_weight = serializers.FloatField(required=False, allow_null=True, default=None)
    filters = serializers.JSONField(required=False, allow_null=True, default=None, help_text=FILTERS_HELP)
    score_threshold = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        help_text="Drop hits whose score (fused, or rerank) is below this.",
    )
    rerank = RerankOptionField(required=False, allow_null=True, default=None)


class TurnSerializer(serializers.Serializer):
    human = serializers.CharField(allow_blank=True)
    assistant = serializers.CharField(allow_blank=True)


class ScoreRatioSerializer(serializers.Serializer):
    tfidf = serializers.FloatField(required=False, allow_null=True, default=None)
    vector = serializers.FloatField(required=False, allow_null=True, default=None)


class RethinkChatSerializer(serializers.Serializer):
    plugin = serializers.CharField()
    query = serializers.CharField(allow_blank=True, trim_whitespace=False)
    session = TurnSerializer(many=True, required=False, default=list)
    search_result_num = serializers.IntegerField(required=False, allow_null=True, default=None)
    prompt_prefix = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, default=None, max_length=4000
    )
    score_ratio = ScoreRatioSerializer(required=False, default=dict)
    show_search_result = serializers.BooleanField(required=False, allow_null=True, default=None)
    stream = serializers.BooleanField(required=False, default=False)
    model = serializers.CharField(required=False, allow_null=True, default=None)
    temperature = serializers.FloatField(required=False, default=0.7, min_value=0, max_value=2)
    filters = serializers.JSONField(required=False, allow_null=True, default=None, help_text=FILTERS_HELP)
    score_threshold = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        help_text="Drop passages whose score (fused, or rerank) is below this.",
    )
    rerank = RerankOptionField(required=False, allow_null=True, default=None)


class SegmentUpdateSerializer(serializers.Serializer):
    """Lengths and emptiness are checked in the service (shared with the admin); here only types."""

    text = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The segment's new text; search finds it at once.",
    )
    enabled = serializers.BooleanField(required=False, help_text="false: out of search (kept); true: back in.")


class SegmentPreviewSerializer(serializers.Serializer):
    """JSON form of a preview; the multipart form sends ``file`` instead (as uploads do)."""

    text = serializers.CharField(trim_whitespace=False)
    title = serializers.CharField(required=False, allow_blank=True, default="")


class LegacyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=Plugin.Kind.choices, required=False, default=Plugin.Kind.GENERIC)


class LegacyPluginIdSerializer(serializers.Serializer):
    pluginId = serializers.CharField()


class LegacyUploadSerializer(LegacyPluginIdSerializer):
    file = serializers.ListField(child=serializers.FileField())


class LegacyRethinkSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True, trim_whitespace=False)
    pluginName = serializers.CharField()
    modelVersion = serializers.CharField(required=False, allow_null=True, default=None)
    searchResultNum = serializers.IntegerField(required=False, allow_null=True, default=None)


def render_run(run: IngestRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id,
        "status": run.status,
        "done": run.done,
        "total": run.total,
        "failed": run.failed,
        "chunks": run.chunks,
        "created_at": int(run.created_at.timestamp()),
        "finished_at": int(run.finished_at.timestamp()) if run.finished_at else None,
    }


def render_dense(plugin: Plugin) -> dict[str, Any]:
    """The dense side's build: ``ready`` (searches are hybrid) or queued/building/failed (BM25 alone)."""
    return {
        "status": plugin.dense_status,
        "done": plugin.dense_done,
        "total": plugin.dense_total,
        "error": plugin.dense_error or None,
    }


def render_plugin(plugin: Plugin, *, detail: bool = False, run: IngestRun | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "plugin_id": plugin.id,
        "plugin_name": plugin.name,
        "slug": plugin.slug,
        "available": True,
        "builtin": plugin.builtin,
        "kind": plugin.kind,
        "status": plugin.status,
        "embedding_model": plugin.embedding_model or None,
        "dense": render_dense(plugin),
        "created_at": int(plugin.created_at.timestamp()),
    }
    if detail:
        body["description"] = plugin.description
        body["params"] = plugin.params
        body["document_count"] = plugin.documents.count()
        body["ingest"] = render_run(run)
    return body


def render_document(document: Document) -> dict[str, Any]:
    return {
        "file_id": document.id,
        "file_name": document.source or document.external_id,
        "external_id": document.external_id,
        "title": document.title,
        "status": document.status,
        "chunk_count": document.chunk_count,
        "error": document.error or None,
        "created_at": int(document.created_at.timestamp()),
    }


def render_upload(document: Document) -> dict[str, Any]:
    return {
        "file_id": document.id,
        "file_name": document.source or document.external_id,
        "external_id": document.external_id,
        "status": document.status,
    }


def render_segment(segment: Chunk) -> dict[str, Any]:
    return {
        "segment_id": str(segment.pk),
        "file_id": segment.document_id,
        "ordinal": segment.ordinal,
        "text": segment.text,
        "start": segment.start,
        "end": segment.end,
        "enabled": segment.enabled,
        "edited": segment.edited,
        "char_count": len(segment.text),
    }


def render_preview(previews: list[Any]) -> dict[str, Any]:
    """``previews``: ``segments.PreviewDocument`` items."""
    return {
        "object": "list",
        "data": [
            {
                "external_id": p.external_id,
                "title": p.title,
                "chunk_count": p.chunk_count,
                "chunks": [
                    {"ordinal": c.ordinal, "text": c.text, "start": c.start, "end": c.end, "char_count": len(c.text)}
                    for c in p.chunks
                ],
            }
            for p in previews
        ],
        "truncated": sum(len(p.chunks) for p in previews) < sum(p.chunk_count for p in previews),
    }


def list_page(items: list[Any], *, has_more: bool, render: Any, id_key: str) -> dict[str, Any]:
    data = [render(item) for item in items]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0][id_key] if data else None,
        "last_id": data[-1][id_key] if data else None,
        "has_more": has_more,
    }
