from django.contrib import admin

from apps.chat.models import ModelEndpoint


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "family", "backend", "quantization", "is_default", "enabled"]
    list_filter = ["kind", "family", "backend", "enabled"]
    search_fields = ["name", "path", "base_url"]
