from __future__ import annotations

from typing import Any

from drf_spectacular.drainage import set_override
from rest_framework import serializers

from apps.core.fields import StrictCharField
from apps.core.serializers import KnownFieldsSerializer
from apps.search.providers import configured_providers
from apps.search.services import SearchResponse


class SearchRequestSerializer(KnownFieldsSerializer):
    query = StrictCharField(max_length=2000)
    top_k = serializers.IntegerField(required=False, min_value=1, max_value=50, default=10)
    providers = serializers.ListField(
        child=serializers.CharField(), required=False, allow_empty=False, min_length=1, help_text="Default: all."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The schema names the providers this deployment configured (`web` needs SEARXNG_URL); the search service
        # checks the names, for chat's `internet` too.
        providers = self.fields["providers"]
        if isinstance(providers, serializers.ListField):
            set_override(providers.child, "field", {"type": "string", "enum": sorted(configured_providers())})


class WebSearchResultSerializer(serializers.Serializer):
    title = serializers.CharField()
    url = serializers.CharField()
    snippet = serializers.CharField()
    source = serializers.CharField(help_text="The provider that found it.")  # type: ignore[assignment]  # a field: the metaclass moves it out of the class


class WebSearchResponseSerializer(serializers.Serializer):
    """The web search's results, best first."""

    # Built from apps.search.services.SearchResponse.

    total_size = serializers.SerializerMethodField()
    results = WebSearchResultSerializer(many=True)
    providers = serializers.ListField(child=serializers.CharField(), help_text="The providers that answered.")

    def get_total_size(self, response: SearchResponse) -> int:
        return len(response.results)
