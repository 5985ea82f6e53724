from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.batches import services
from apps.batches.models import Batch
from apps.core.admin import act_on_each


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "endpoint",
        "status",
        "request_total",
        "request_completed",
        "request_failed",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status", "endpoint"]
    search_fields = ["id", "owner__username", "input_file_id", "output_file_id", "error_file_id"]
    readonly_fields = [field.name for field in Batch._meta.fields]
    actions = ["cancel_batches"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # batches are created through the API, from an uploaded file

    @admin.action(description="Cancel selected batches")
    def cancel_batches(self, request: HttpRequest, queryset: QuerySet[Batch]) -> None:
        act_on_each(self, request, queryset, act=lambda batch: services.batch_cancel(batch=batch))
