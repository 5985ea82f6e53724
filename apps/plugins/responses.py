"""Response shapes: each builds its body (``Serializer(instance).data``) and documents it in the schema."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import BlankAsNullField, ConstantField, UnixTimeField
from apps.core.schema import legacy_envelope
from apps.core.serializers import PageSerializer
from apps.plugins import selectors
from apps.plugins.models import Document, IngestRun, Plugin


class IngestRunSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=IngestRun.Status.choices)
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    failed = serializers.IntegerField()
    chunks = serializers.IntegerField()
    created_at = UnixTimeField(allow_null=False)
    finished_at = UnixTimeField()


class DenseBuildSerializer(serializers.Serializer):
    """The dense side's build: `ready` (searches are hybrid) or queued/building/failed (BM25 alone)."""

    status = serializers.ChoiceField(source="dense_status", choices=Plugin.DenseStatus.choices)
    done = serializers.IntegerField(source="dense_done")
    total = serializers.IntegerField(source="dense_total")
    error = BlankAsNullField(source="dense_error")


class PluginSerializer(serializers.Serializer):
    plugin_id = serializers.CharField(source="id")
    plugin_name = serializers.CharField(source="name")
    slug = serializers.CharField()
    available = serializers.SerializerMethodField()
    builtin = serializers.BooleanField()
    kind = serializers.ChoiceField(choices=Plugin.Kind.choices)
    status = serializers.ChoiceField(choices=Plugin.Status.choices)
    embedding_model = BlankAsNullField()
    dense = DenseBuildSerializer(source="*")
    created_at = UnixTimeField(allow_null=False)

    def get_available(self, plugin: Plugin) -> bool:
        return True


class PluginDetailSerializer(PluginSerializer):
    description = serializers.CharField()
    params = serializers.DictField(help_text="The plugin's search defaults (top_k, weights, prompt_prefix, ...).")
    document_count = serializers.SerializerMethodField()
    ingest = serializers.SerializerMethodField(help_text="The latest ingest run, or null before any upload.")

    def get_document_count(self, plugin: Plugin) -> int:
        return plugin.documents.count()

    @extend_schema_field(IngestRunSerializer(allow_null=True))
    def get_ingest(self, plugin: Plugin) -> dict[str, Any] | None:
        run = selectors.ingest_run_latest(plugin=plugin)
        return IngestRunSerializer(run).data if run is not None else None


class FileRefSerializer(serializers.Serializer):
    file_id = serializers.CharField(source="id")
    file_name = serializers.SerializerMethodField()
    external_id = serializers.CharField()

    def get_file_name(self, document: Document) -> str:
        return document.source or document.external_id


class PluginUploadSerializer(FileRefSerializer):
    status = serializers.ChoiceField(choices=Document.Status.choices)


class PluginFileSerializer(FileRefSerializer):
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Document.Status.choices)
    chunk_count = serializers.IntegerField()
    error = BlankAsNullField()
    created_at = UnixTimeField(allow_null=False)


class ChunkSpanSerializer(serializers.Serializer):
    # No docstring: the schema would show it as each subclass's description.
    ordinal = serializers.IntegerField()
    text = serializers.CharField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    char_count = serializers.SerializerMethodField()

    def get_char_count(self, chunk: Any) -> int:
        return len(chunk.text)


class SegmentSerializer(ChunkSpanSerializer):
    segment_id = serializers.CharField(source="pk")
    file_id = serializers.CharField(source="document_id")
    enabled = serializers.BooleanField()
    edited = serializers.BooleanField()


class SegmentPreviewChunkSerializer(ChunkSpanSerializer):
    pass


class SegmentPreviewDocumentSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    title = serializers.CharField()
    chunk_count = serializers.IntegerField()
    chunks = SegmentPreviewChunkSerializer(many=True)


class ListBodySerializer(serializers.Serializer):
    """A whole list, unpaginated."""

    # A subclass declares `data` with many=True.

    object = ConstantField("list")
    data: serializers.Field = serializers.ListField()  # type: ignore[assignment]  # a field, not Serializer.data


class SegmentPreviewResultSerializer(ListBodySerializer):
    """How each document would be cut into segments, nothing stored."""

    # Built from segments.PreviewDocument items: {"data": previews}.

    data = SegmentPreviewDocumentSerializer(many=True)
    truncated = serializers.SerializerMethodField(help_text="Only the first chunks are shown.")

    def get_truncated(self, preview: dict[str, Any]) -> bool:
        documents = preview["data"]
        return sum(len(p.chunks) for p in documents) < sum(p.chunk_count for p in documents)


class PluginPageSerializer(PageSerializer):
    data = PluginSerializer(many=True)


class PluginFilePageSerializer(PageSerializer):
    data = PluginFileSerializer(many=True)


class SegmentPageSerializer(PageSerializer):
    data = SegmentSerializer(many=True)


class PluginListSerializer(ListBodySerializer):
    data = PluginSerializer(many=True)


class PluginUploadListSerializer(ListBodySerializer):
    data = PluginUploadSerializer(many=True)


class PluginDeletedSerializer(serializers.Serializer):
    plugin_id = serializers.CharField()
    deleted = serializers.BooleanField()


class PluginFileDeletedSerializer(serializers.Serializer):
    file_id = serializers.CharField()
    deleted = serializers.BooleanField()


# --- Search and rethink ---------------------------------------------------------------------------------


class SearchHitScoresSerializer(serializers.Serializer):
    sparse = serializers.FloatField()
    dense = serializers.FloatField()
    rerank = serializers.FloatField(required=False, help_text="With a rerank model only.")


class SearchHitSerializer(serializers.Serializer):
    """A passage, with its scores."""

    # As selectors.plugin_search_in ranks it.

    doc_id = serializers.CharField(help_text="The document's external id.")
    title = serializers.CharField()
    url = serializers.CharField()
    text = serializers.CharField()
    score = serializers.FloatField()
    scores = SearchHitScoresSerializer()
    meta = serializers.DictField(help_text="The document's metadata.")


class SearchResultSerializer(ListBodySerializer):
    """The passages best first, and the state of the plugin's dense side."""

    # Built from {"data": hits, "dense": plugin}.

    data = SearchHitSerializer(many=True)
    dense = DenseBuildSerializer()


class RethinkStepSerializer(serializers.Serializer):
    action = serializers.CharField()
    method = serializers.CharField(required=False, help_text="rewrite query: how the standalone query was made.")
    query = serializers.CharField(required=False, help_text="search: the query searched with.")
    observation = serializers.CharField()


class RethinkSerializer(serializers.Serializer):
    """The rethink answer; `search_result` only with `show_search_result`."""

    result = serializers.CharField()
    draft = serializers.CharField()
    steps = RethinkStepSerializer(many=True)
    search_result = SearchHitSerializer(many=True, required=False)


# --- Legacy /bot-service/ -------------------------------------------------------------------------------


class OwnedPluginListSerializer(serializers.Serializer):
    list = PluginSerializer(many=True)


class PluginIdDeletedSerializer(serializers.Serializer):
    pluginId = serializers.CharField()
    deleted = serializers.BooleanField()


class PluginFilesSerializer(serializers.Serializer):
    files = PluginUploadSerializer(many=True)


class RethinkAnswerSerializer(serializers.Serializer):
    """The rethink answer: `result` as a one-item list, `search_result` always present."""

    result = serializers.SerializerMethodField()
    steps = RethinkStepSerializer(many=True)
    search_result = SearchHitSerializer(many=True, default=list)

    def get_result(self, body: dict[str, Any]) -> list[str]:
        return [body["result"]]


LegacyPluginEnvelope = legacy_envelope(PluginSerializer)
LegacyPluginListEnvelope = legacy_envelope(OwnedPluginListSerializer)
LegacyPluginDeletedEnvelope = legacy_envelope(PluginIdDeletedSerializer)
LegacyUploadListEnvelope = legacy_envelope(PluginFilesSerializer)
LegacyRethinkEnvelope = legacy_envelope(RethinkAnswerSerializer)
