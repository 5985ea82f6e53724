"""``/v1/rerank`` in the Jina/Cohere shape, and the ``rerank`` option of plugin search and chat."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.serializers import KnownFieldsSerializer

MAX_DOCUMENTS = 1000
MAX_TEXT_CHARS = 32_000


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string"},
            {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        ],
        "description": 'A document: its text, or {"text": …} (other keys are ignored).',
    }
)
class RerankDocumentField(serializers.Field):
    def to_internal_value(self, data: Any) -> str:
        text = data.get("text") if isinstance(data, dict) else data
        if not isinstance(text, str):
            raise serializers.ValidationError('A document is a string or {"text": string}.')
        if len(text) > MAX_TEXT_CHARS:
            raise serializers.ValidationError(f"A document is longer than {MAX_TEXT_CHARS} characters.")
        return text

    def to_representation(self, value: Any) -> Any:
        return value


class RerankRequestSerializer(KnownFieldsSerializer):
    # Cohere's options that would change the ranking: structured documents' fields, and how long documents are
    # cut (here a document is read up to the model's own limit).
    unsupported_fields = frozenset({"rank_fields", "max_chunks_per_doc", "max_tokens_per_doc"})

    model = serializers.CharField(
        required=False, max_length=200, help_text="A rerank model (kind `rerank`); the default one when left out."
    )
    query = serializers.CharField(max_length=MAX_TEXT_CHARS)
    documents = serializers.ListField(child=RerankDocumentField(), min_length=1, max_length=MAX_DOCUMENTS)
    top_n = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        help_text="Return the best top_n documents (all when left out or larger).",
    )
    return_documents = serializers.BooleanField(
        required=False, default=True, help_text='Include each document as {"text"} in its result.'
    )
    user = serializers.CharField(required=False)


class RerankDocumentSerializer(serializers.Serializer):
    text = serializers.CharField()


class RerankResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="The document's position in the request.")
    relevance_score = serializers.FloatField()
    document = RerankDocumentSerializer(required=False, help_text="Only with return_documents.")


class RerankUsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField(source="tokens")
    total_tokens = serializers.IntegerField(source="tokens")


class RerankResponseSerializer(serializers.Serializer):
    """The documents ranked best first, each by its index in the request."""

    # Built from {id, model, results, tokens}.

    id = serializers.CharField()
    model = serializers.CharField()
    results = RerankResultSerializer(many=True, help_text="Best first.")
    usage = RerankUsageSerializer(source="*")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "A rerank model's name."},
            {
                "type": "object",
                "properties": {"model": {"type": "string"}, "top_n": {"type": "integer", "minimum": 1, "maximum": 100}},
                "required": ["model"],
            },
            {"type": "boolean", "enum": [False], "description": "No reranking, even if the plugin has a default."},
        ],
        "description": "Rerank the first-stage candidates (top_n of them, default max(4 × top_k, 20), at most 100) "
        "with a rerank model; score then is the rerank score. Unset: the plugin's default "
        "(params.rerank), if any.",
    }
)
class RerankOptionField(serializers.JSONField):
    """Checked (and resolved) by ``apps.rerank.selectors.rerank_option_parse``."""
