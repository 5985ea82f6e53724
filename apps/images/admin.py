from __future__ import annotations

import base64

from django.contrib import admin
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from apps.images.models import GeneratedImage, ImageJob


def _thumbnail_tag(image: GeneratedImage) -> str:
    """The stored thumbnail inline (a data: URI), so the admin shows it whatever the storage backend."""
    name = image.thumbnail.name if image.thumbnail else ""
    if not name or not default_storage.exists(name):
        return format_html("<span>(no thumbnail)</span>")
    with default_storage.open(name, "rb") as stored:
        data = base64.b64encode(stored.read()).decode()
    return format_html(
        '<img src="data:image/png;base64,{}" alt="{}" title="{}" '
        'style="max-width:128px;max-height:128px;margin-right:4px">',
        data,
        image.pk,
        f"seed {image.seed}",
    )


class GeneratedImageInline(admin.TabularInline):
    model = GeneratedImage
    extra = 0
    can_delete = False
    readonly_fields = ("preview", "id", "index", "seed", "content_type", "size_bytes", "file")
    fields = readonly_fields

    @admin.display(description="Thumbnail")
    def preview(self, image: GeneratedImage) -> str:
        return _thumbnail_tag(image)

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(ImageJob)
class ImageJobAdmin(admin.ModelAdmin):
    list_display = ["id", "thumbnails", "owner", "model", "size", "n", "status", "progress", "error_code", "created_at"]
    list_filter = ["status", "model", "error_code", "created_at"]
    search_fields = ["id", "prompt", "owner__username"]
    readonly_fields = [f.name for f in ImageJob._meta.fields]
    inlines = [GeneratedImageInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ImageJob]:
        return super().get_queryset(request).prefetch_related("images")

    @admin.display(description="Images")
    def thumbnails(self, job: ImageJob) -> str:
        tags = format_html_join("", "{}", ((_thumbnail_tag(image),) for image in job.images.all()))
        return format_html('<div style="white-space:nowrap">{}</div>', tags)

    @admin.display(description="Steps")
    def progress(self, job: ImageJob) -> str:
        return f"{job.steps_done}/{job.steps_total or job.steps}"

    def has_add_permission(self, request: object) -> bool:
        return False
