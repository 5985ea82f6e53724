"""Request shapes (input only) and ``render_*`` functions for responses."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.plugins.models import Document, IngestRun, Plugin


class PluginCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    kind = serializers.ChoiceField(choices=Plugin.Kind.choices, required=False, default=Plugin.Kind.GENERIC)


class FilesUploadSerializer(serializers.Serializer):
    file = serializers.ListField(child=serializers.FileField(), help_text="One or more files (.md .txt .pdf .jsonl "
                                                                         ".docx); repeat the field for several.")


FILTERS_HELP = ('Metadata filter on the documents\' meta: {"key", "op": eq|ne|in|nin|gt|gte|lt|lte|exists, '
                '"value"}, or {"and": [...]} / {"or": [...]} of filters.')


class SearchSerializer(serializers.Serializer):
    """Range checks happen in the service (shared with ``plugin_search``); here only types."""

    plugin = serializers.CharField()
    query = serializers.CharField(allow_blank=True, trim_whitespace=False)
    top_k = serializers.IntegerField(required=False, default=5)
    tfidf_weight = serializers.FloatField(required=False, allow_null=True, default=None)
    embedding_weight = serializers.FloatField(required=False, allow_null=True, default=None)
    filters = serializers.JSONField(required=False, allow_null=True, default=None,
                                    help_text=FILTERS_HELP)
    score_threshold = serializers.FloatField(required=False, allow_null=True, default=None, min_value=0,
                                             help_text="Drop hits whose fused score is below this.")


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
    prompt_prefix = serializers.CharField(required=False, allow_null=True, allow_blank=True, default=None,
                                          max_length=4000)
    score_ratio = ScoreRatioSerializer(required=False, default=dict)
    show_search_result = serializers.BooleanField(required=False, allow_null=True, default=None)
    stream = serializers.BooleanField(required=False, default=False)
    model = serializers.CharField(required=False, allow_null=True, default=None)
    temperature = serializers.FloatField(required=False, default=0.7, min_value=0, max_value=2)
    filters = serializers.JSONField(required=False, allow_null=True, default=None, help_text=FILTERS_HELP)
    score_threshold = serializers.FloatField(required=False, allow_null=True, default=None, min_value=0,
                                             help_text="Drop passages whose fused score is below this.")


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
    return {"id": run.id, "status": run.status, "done": run.done, "total": run.total, "failed": run.failed,
            "chunks": run.chunks, "created_at": int(run.created_at.timestamp()),
            "finished_at": int(run.finished_at.timestamp()) if run.finished_at else None}


def render_plugin(plugin: Plugin, *, detail: bool = False, run: IngestRun | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "plugin_id": plugin.id, "plugin_name": plugin.name, "slug": plugin.slug, "available": True,
        "builtin": plugin.builtin, "kind": plugin.kind, "status": plugin.status,
        "created_at": int(plugin.created_at.timestamp()),
    }
    if detail:
        body["description"] = plugin.description
        body["params"] = plugin.params
        body["document_count"] = plugin.documents.count()
        body["ingest"] = render_run(run)
    return body


def render_document(document: Document) -> dict[str, Any]:
    return {"file_id": document.id, "file_name": document.source or document.external_id,
            "external_id": document.external_id, "title": document.title, "status": document.status,
            "chunk_count": document.chunk_count, "error": document.error or None,
            "created_at": int(document.created_at.timestamp())}


def render_upload(document: Document) -> dict[str, Any]:
    return {"file_id": document.id, "file_name": document.source or document.external_id,
            "external_id": document.external_id, "status": document.status}


def list_page(items: list[Any], *, has_more: bool, render: Any, id_key: str) -> dict[str, Any]:
    data = [render(item) for item in items]
    return {"object": "list", "data": data, "first_id": data[0][id_key] if data else None,
            "last_id": data[-1][id_key] if data else None, "has_more": has_more}
