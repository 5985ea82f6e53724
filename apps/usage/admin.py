from django.contrib import admin

from apps.usage.models import UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "owner",
        "route",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "images",
        "latency_ms",
        "status_code",
    ]
    list_filter = ["route", "model", "status_code"]
    date_hierarchy = "created_at"
    raw_id_fields = ["owner", "api_key"]
