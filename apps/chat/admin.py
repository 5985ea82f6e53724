from django.contrib import admin

from apps.chat.models import ModelEndpoint
from workers.runtime.replicas import replica_health
from workers.runtime.upstream_http import base_urls


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "family", "backend", "served_by", "quantization", "is_default", "enabled"]
    list_filter = ["kind", "family", "backend", "enabled"]
    search_fields = ["name", "path", "base_url", "serve_url"]
    readonly_fields = ["replica_status"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "family", "is_default", "enabled", "owned_by"]}),
        ("Weights", {"fields": ["backend", "path", "dtype", "quantization", "rope_scaling"]}),
        (
            "Upstream",
            {
                "fields": [
                    "base_url",
                    "serve_url",
                    "replica_urls",
                    "replica_status",
                    "upstream_model",
                    "upstream_api_key",
                ]
            },
        ),
        ("Limits", {"fields": ["max_input_tokens", "max_new_tokens"]}),
        ("Embeddings", {"fields": ["matryoshka"]}),
        ("Rerank", {"fields": ["rerank_api"]}),
    ]

    @admin.display(description="served by")
    def served_by(self, endpoint: ModelEndpoint) -> str:
        urls = [endpoint.base_url or endpoint.serve_url, *(endpoint.replica_urls or [])]
        return ", ".join(url for url in urls if url) or "this platform"

    @admin.display(description="replica status (this process)")
    def replica_status(self, endpoint: ModelEndpoint) -> str:
        from apps.chat.selectors import endpoint_spec, serving_spec

        try:
            spec = serving_spec(spec=endpoint_spec(endpoint))
        except ValueError:
            return "-"
        if spec.backend != "openai-upstream":
            return "-"
        return ", ".join(f"{url}: {'down' if replica_health.is_down(url) else 'up'}" for url in base_urls(spec=spec))
