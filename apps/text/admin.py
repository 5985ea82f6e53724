from __future__ import annotations

from django.contrib import admin

from apps.text.models import Pdf2TextJob, SummarizationJob

_COMMON_READONLY = [
    "id",
    "owner",
    "api_key",
    "status",
    "error_code",
    "error_message",
    "file",
    "filename",
    "size_bytes",
    "created_at",
    "started_at",
    "heartbeat_at",
    "finished_at",
]


@admin.register(Pdf2TextJob)
class Pdf2TextJobAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "filename", "status", "error_code", "page_count", "created_at"]
    list_filter = ["status", "error_code", "created_at"]
    search_fields = ["id", "filename", "owner__username"]
    readonly_fields = [*_COMMON_READONLY, "pages", "layout", "child_pid", "page_count", "result"]
    exclude = ["password"]


@admin.register(SummarizationJob)
class SummarizationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "model", "source", "status", "error_code", "created_at"]
    list_filter = ["status", "source", "model", "created_at"]
    search_fields = ["id", "filename", "owner__username"]
    readonly_fields = [
        *_COMMON_READONLY,
        "source",
        "model",
        "max_length",
        "language",
        "progress",
        "steps",
        "summary",
        "prompt_tokens",
        "completion_tokens",
        "input_text",
    ]
    exclude = ["password"]
