from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.plugins import segments, selectors
from apps.plugins.models import Chunk, Document, IngestRun, Plugin
from apps.plugins.services import documents, ingestion
from workers.errors import DomainError


class IngestRunInline(admin.TabularInline):
    model = IngestRun
    readonly_fields = ("id", "status", "done", "total", "failed", "chunks", "created_at", "finished_at")
    fields = readonly_fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at"]


class DocumentInline(admin.TabularInline):
    model = Document
    readonly_fields = ("external_id", "title", "source", "status", "chunk_count", "error", "created_at")
    fields = readonly_fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ["-created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        return super().get_queryset(request).defer("text")


@admin.register(Plugin)
class PluginAdmin(admin.ModelAdmin):
    list_display = [
        "slug",
        "name",
        "owner",
        "builtin",
        "kind",
        "status",
        "ingest_progress",
        "index_version",
        "created_at",
    ]
    list_filter = ["builtin", "kind", "status"]
    search_fields = ["id", "slug", "name", "owner__username"]
    readonly_fields = ["id", "index_version", "status", "created_at", "ingest_progress", "test_query_link"]
    inlines = [IngestRunInline, DocumentInline]
    actions = ["reindex"]

    @admin.display(description="Ingest progress")
    def ingest_progress(self, obj: Plugin) -> str:
        run = selectors.ingest_run_latest(plugin=obj)
        if run is None:
            return "—"
        return f"{run.status} {run.done}/{run.total}" + (f" ({run.failed} failed)" if run.failed else "")

    @admin.display(description="Test query")
    def test_query_link(self, obj: Plugin) -> SafeString:
        if not obj.pk:
            return format_html("<em>{}</em>", "save first")
        url = reverse("admin:plugins_plugin_test_query", args=[obj.pk])
        return format_html('<a href="{}">Search this plugin…</a>', url)

    @admin.action(description="Rebuild the index from the documents (in the background)")
    def reindex(self, request: HttpRequest, queryset: QuerySet[Plugin]) -> None:
        for plugin in queryset:
            ingestion.plugin_reindex_enqueue(plugin=plugin)
        self.message_user(request, f"Reindexing {queryset.count()} plugin(s).", messages.SUCCESS)

    def get_urls(self) -> list[Any]:
        custom = [
            path(
                "<str:plugin_id>/test-query/",
                self.admin_site.admin_view(self.test_query_view),
                name="plugins_plugin_test_query",
            )
        ]
        return custom + super().get_urls()

    def test_query_view(self, request: HttpRequest, plugin_id: str) -> HttpResponse:
        plugin = get_object_or_404(Plugin, pk=plugin_id)
        query = request.GET.get("q", "").strip()
        top_k = request.GET.get("top_k", "10")
        hits: list[dict[str, Any]] = []
        error = ""
        if query:
            try:
                hits = selectors.plugin_search_in(
                    plugin=plugin, query=query, top_k=int(top_k) if top_k.isdigit() else 10
                )
            except DomainError as exc:
                error = exc.message
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": plugin,
            "title": f"Test query: {plugin.name}",
            "query": query,
            "top_k": top_k,
            "hits": hits,
            "error": error,
        }
        return TemplateResponse(request, "admin/plugins/plugin/test_query.html", context)


class ChunkInline(admin.TabularInline):
    model = Chunk
    readonly_fields = ("ordinal", "start", "end", "enabled", "edited", "text")
    fields = readonly_fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True  # the segment's own page edits it through the service


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "plugin", "status", "chunk_count", "created_at"]
    list_filter = ["status", "plugin"]
    search_fields = ["id", "external_id", "title"]
    readonly_fields = [
        "id",
        "plugin",
        "run",
        "external_id",
        "title",
        "url",
        "source",
        "file",
        "content_hash",
        "status",
        "error",
        "chunk_count",
        "created_at",
        "meta",
        "text",
    ]
    inlines = [ChunkInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        documents.document_delete(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            documents.document_delete(document=document)


@admin.register(IngestRun)
class IngestRunAdmin(admin.ModelAdmin):
    list_display = ["id", "plugin", "status", "done", "total", "failed", "chunks", "created_at", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [
        "id",
        "plugin",
        "status",
        "done",
        "total",
        "failed",
        "chunks",
        "created_at",
        "started_at",
        "finished_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class SegmentForm(forms.ModelForm):
    """The API's checks, as form errors."""

    class Meta:
        model = Chunk
        fields = ["enabled", "text"]
        widgets = {"text": forms.Textarea(attrs={"rows": 16, "cols": 100})}

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if "\r" not in self.instance.text:  # browsers send a textarea's lines back with CRLF
            text = text.replace("\r\n", "\n")
        try:
            return segments.segment_text_clean(plugin=self.instance.document.plugin, text=text)
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        if self.instance.document.status != Document.Status.PROCESSED:
            raise forms.ValidationError("The file is not processed; its segments can be changed once it is.")
        return cleaned


@admin.register(Chunk)
class SegmentAdmin(admin.ModelAdmin):
    """Segments (chunks): saving one, or the enable/disable actions, update the plugin's index at once."""

    form = SegmentForm
    list_display = ["__str__", "document", "plugin", "ordinal", "enabled", "edited", "char_count", "excerpt"]
    list_filter = ["enabled", "edited", "document__plugin"]
    list_select_related = ["document", "document__plugin"]
    search_fields = ["text", "document__id", "document__external_id", "document__title"]
    fields = ["document", "ordinal", "start", "end", "edited", "enabled", "text", "original_text"]
    readonly_fields = ["document", "ordinal", "start", "end", "edited", "original_text"]
    actions = ["disable_segments", "enable_segments"]

    @admin.display(description="Plugin")
    def plugin(self, obj: Chunk) -> Plugin:
        return obj.document.plugin

    @admin.display(description="Characters")
    def char_count(self, obj: Chunk) -> int:
        return len(obj.text)

    @admin.display(description="Text")
    def excerpt(self, obj: Chunk) -> str:
        return obj.text[:120] + ("…" if len(obj.text) > 120 else "")

    @admin.display(description="Original text")
    def original_text(self, obj: Chunk) -> str:
        return obj.document.text[obj.start : obj.end]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Chunk | None = None) -> bool:
        return False  # a segment goes with its file; disable it instead

    def save_model(self, request: HttpRequest, obj: Chunk, form: forms.ModelForm, change: bool) -> None:
        text = form.cleaned_data["text"] if form.cleaned_data["text"] != form.initial["text"] else None
        enabled = form.cleaned_data["enabled"] if form.cleaned_data["enabled"] != form.initial["enabled"] else None
        if text is None and enabled is None:
            return
        try:
            segments.segment_update(segment=obj, text=text, enabled=enabled)
        except DomainError as exc:
            self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Chunk], *, enabled: bool) -> None:
        changed, skipped = segments.segments_set_enabled(segments=queryset, enabled=enabled)
        self.message_user(request, f"{'Enabled' if enabled else 'Disabled'} {changed} segment(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {skipped} segment(s) whose file is not processed or not in the index (reindex the plugin).",
                messages.WARNING,
            )

    @admin.action(description="Disable selected segments")
    def disable_segments(self, request: HttpRequest, queryset: QuerySet[Chunk]) -> None:
        self._set_enabled(request, queryset, enabled=False)

    @admin.action(description="Enable selected segments")
    def enable_segments(self, request: HttpRequest, queryset: QuerySet[Chunk]) -> None:
        self._set_enabled(request, queryset, enabled=True)
