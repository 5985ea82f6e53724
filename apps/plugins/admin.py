from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.core.errors import ApiError
from apps.plugins import selectors, services
from apps.plugins.models import Chunk, Document, IngestRun, Plugin


class IngestRunInline(admin.TabularInline):
    model = IngestRun
    fields = ["id", "status", "done", "total", "failed", "chunks", "created_at", "finished_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-created_at"]


class DocumentInline(admin.TabularInline):
    model = Document
    fields = ["external_id", "title", "source", "status", "chunk_count", "error", "created_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ["-created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        return super().get_queryset(request).defer("text")


@admin.register(Plugin)
class PluginAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "owner", "builtin", "kind", "status", "ingest_progress", "index_version",
                    "created_at"]
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
            services.plugin_reindex_enqueue(plugin=plugin)
        self.message_user(request, f"Reindexing {queryset.count()} plugin(s).", messages.SUCCESS)

    def get_urls(self) -> list[Any]:
        custom = [path("<str:plugin_id>/test-query/", self.admin_site.admin_view(self.test_query_view),
                       name="plugins_plugin_test_query")]
        return custom + super().get_urls()

    def test_query_view(self, request: HttpRequest, plugin_id: str) -> HttpResponse:
        plugin = get_object_or_404(Plugin, pk=plugin_id)
        query = request.GET.get("q", "").strip()
        top_k = request.GET.get("top_k", "10")
        hits: list[dict[str, Any]] = []
        error = ""
        if query:
            try:
                hits = selectors.plugin_search_in(plugin=plugin, query=query, top_k=int(top_k) if top_k.isdigit()
                                                  else 10)
            except ApiError as exc:
                error = str(exc.detail)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": plugin,
                   "title": f"Test query: {plugin.name}", "query": query, "top_k": top_k, "hits": hits,
                   "error": error}
        return TemplateResponse(request, "admin/plugins/plugin/test_query.html", context)


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["ordinal", "start", "end", "text"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "plugin", "status", "chunk_count", "created_at"]
    list_filter = ["status", "plugin"]
    search_fields = ["id", "external_id", "title"]
    readonly_fields = ["id", "plugin", "run", "external_id", "title", "url", "source", "file", "content_hash",
                       "status", "error", "chunk_count", "created_at", "meta", "text"]
    inlines = [ChunkInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        services.document_delete(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            services.document_delete(document=document)


@admin.register(IngestRun)
class IngestRunAdmin(admin.ModelAdmin):
    list_display = ["id", "plugin", "status", "done", "total", "failed", "chunks", "created_at", "finished_at"]
    list_filter = ["status"]
    readonly_fields = ["id", "plugin", "status", "done", "total", "failed", "chunks", "created_at", "started_at",
                       "finished_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
