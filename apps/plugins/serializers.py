"""Request shapes (validated); the response shapes are in ``apps.plugins.responses``."""

from __future__ import annotations

from rest_framework import serializers

from apps.core.fields import StrictCharField
from apps.core.serializers import KnownFieldsSerializer
from apps.plugins.models import Plugin
from apps.rerank.serializers import RerankOptionField


class PluginCreateSerializer(KnownFieldsSerializer):
    name = StrictCharField(max_length=100)
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)
    kind = serializers.ChoiceField(choices=Plugin.Kind.choices, required=False, default=Plugin.Kind.GENERIC)


class PluginUpdateSerializer(KnownFieldsSerializer):
    embedding_model = StrictCharField(
        max_length=100,
        help_text="An embedding model's id (GET /v1/models); "
        "the plugin's chunks are re-embedded in the background, and searches "
        "rank by BM25 alone until that is done.",
    )


class FilesUploadSerializer(serializers.Serializer):
    file = serializers.ListField(
        child=serializers.FileField(),
        allow_empty=False,
        help_text="One or more files (.md .txt .pdf .jsonl .docx); repeat the field for several.",
    )


class FilesFormSerializer(KnownFieldsSerializer):
    """An upload form's field names (its files are checked as uploads, by the service)."""

    file = serializers.ListField(child=serializers.FileField(allow_empty_file=True), required=False)


FILTERS_HELP = (
    'Metadata filter on the documents\' meta: {"key", "op": eq|ne|in|nin|gt|gte|lt|lte|exists, '
    '"value"}, or {"and": [...]} / {"or": [...]} of filters.'
)


class RetrievalOptionsSerializer(serializers.Serializer):
    """What narrows and reorders a search, for search and rethink alike."""

    filters = serializers.JSONField(required=False, allow_null=True, default=None, help_text=FILTERS_HELP)
    score_threshold = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0,
        help_text="Drop passages whose score (fused, or rerank) is below this.",
    )
    rerank = RerankOptionField(required=False, allow_null=True, default=None)


class SearchSerializer(KnownFieldsSerializer, RetrievalOptionsSerializer):
    """A search of a plugin's documents, by BM25 and embeddings fused."""

    # Range checks happen in the service (shared with plugin_search); here only types.
    plugin = StrictCharField()
    query = StrictCharField(allow_blank=True, trim_whitespace=False)
    top_k = serializers.IntegerField(required=False, default=5)
    tfidf_weight = serializers.FloatField(required=False, allow_null=True, default=None)
    embedding_weight = serializers.FloatField(required=False, allow_null=True, default=None)


class TurnSerializer(serializers.Serializer):
    human = StrictCharField(allow_blank=True)
    assistant = StrictCharField(allow_blank=True)


class ScoreRatioSerializer(serializers.Serializer):
    tfidf = serializers.FloatField(required=False, allow_null=True, default=None)
    vector = serializers.FloatField(required=False, allow_null=True, default=None)


class RethinkChatSerializer(KnownFieldsSerializer, RetrievalOptionsSerializer):
    """A question answered with a plugin's documents: a first answer, a search, then the answer revised against
    the passages found."""

    plugin = StrictCharField()
    query = StrictCharField(allow_blank=True, trim_whitespace=False)
    session = TurnSerializer(many=True, required=False, default=list)
    search_result_num = serializers.IntegerField(required=False, allow_null=True, default=None)
    prompt_prefix = StrictCharField(required=False, allow_null=True, allow_blank=True, default=None, max_length=4000)
    score_ratio = ScoreRatioSerializer(required=False, default=dict)
    show_search_result = serializers.BooleanField(required=False, allow_null=True, default=None)
    stream = serializers.BooleanField(required=False, default=False)
    model = StrictCharField(required=False, allow_null=True, default=None)
    temperature = serializers.FloatField(required=False, default=0.7, min_value=0, max_value=2)
    max_tokens = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="At most this many new tokens in each of the answer's generations, the draft and the revised "
        "answer (a follow-up's rewrite keeps its own 64). At most the model's max_new_tokens, which is also the "
        "default.",
    )


class SegmentUpdateSerializer(KnownFieldsSerializer):
    # Lengths and emptiness are checked in the service (shared with the admin); here only types.

    text = StrictCharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The segment's new text; search finds it at once.",
    )
    enabled = serializers.BooleanField(required=False, help_text="false: out of search (kept); true: back in.")


class SegmentPreviewSerializer(serializers.Serializer):
    """The JSON form of a preview; the multipart form sends `file` instead (as uploads do)."""

    text = StrictCharField(trim_whitespace=False)
    title = StrictCharField(required=False, allow_blank=True, default="")


class SegmentPreviewInputSerializer(FilesFormSerializer):
    """Either form of a preview, documented as ``SegmentPreviewSerializer`` and ``FilesUploadSerializer``: here the
    field names and types; which form was sent, emptiness and sizes are the service's checks."""

    text = StrictCharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False)
    title = StrictCharField(required=False, allow_null=True, allow_blank=True, trim_whitespace=False)


class LegacyCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    description = StrictCharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=Plugin.Kind.choices, required=False, default=Plugin.Kind.GENERIC)


class LegacyPluginIdSerializer(serializers.Serializer):
    pluginId = StrictCharField()


class LegacyPluginUploadSerializer(LegacyPluginIdSerializer):
    file = serializers.ListField(child=serializers.FileField(), allow_empty=False)


class LegacyRethinkSerializer(serializers.Serializer):
    text = StrictCharField(allow_blank=True, trim_whitespace=False)
    pluginName = StrictCharField()
    modelVersion = StrictCharField(required=False, allow_null=True, default=None)
    searchResultNum = serializers.IntegerField(required=False, allow_null=True, default=None)
