from __future__ import annotations

import time
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import domain_error_body
from apps.core.legacy import LegacyApi, legacy_ok
from apps.core.pagination import page_params, paginate_newest_first
from apps.core.sse import guarded_stream, sse_response
from apps.plugins import dense, rethink, segments, selectors, services
from apps.plugins.models import Chunk
from apps.plugins.serializers import (
    FilesUploadSerializer,
    LegacyCreateSerializer,
    LegacyPluginIdSerializer,
    LegacyRethinkSerializer,
    LegacyUploadSerializer,
    PluginCreateSerializer,
    PluginUpdateSerializer,
    RethinkChatSerializer,
    SearchSerializer,
    SegmentPreviewSerializer,
    SegmentUpdateSerializer,
    list_page,
    render_dense,
    render_document,
    render_plugin,
    render_preview,
    render_segment,
    render_upload,
)
from apps.usage.recording import request_usage_record
from workers.errors import DomainError, InvalidRequest
from workers.runtime.specs import GenerationResult

JSON_DOC = OpenApiResponse(description="JSON object (see the README for the shape)")
TAGS = ["plugins"]


def _valid(serializer_class: type, data: object) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _files(request: Request) -> list[Any]:
    files = request.FILES.getlist("file")
    if not files:
        raise InvalidRequest("Send one or more files as multipart field `file`.", param="file")
    return files


def _plugin_detail(plugin: Any) -> dict[str, Any]:
    return render_plugin(plugin, detail=True, run=selectors.ingest_run_latest(plugin=plugin))


# --- /v1/plugin/custom/plugins --------------------------------------------------------------------------


class PluginListCreateApi(APIView):
    @extend_schema(operation_id="plugins_custom_list", tags=TAGS, responses=JSON_DOC)
    def get(self, request: Request) -> Response:
        items, has_more = paginate_newest_first(
            selectors.plugin_list_owned(owner=request.user), **page_params(request.query_params)
        )
        return Response(list_page(items, has_more=has_more, render=render_plugin, id_key="plugin_id"))

    @extend_schema(
        operation_id="plugins_custom_create", tags=TAGS, request=PluginCreateSerializer, responses={201: JSON_DOC}
    )
    def post(self, request: Request) -> Response:
        data = _valid(PluginCreateSerializer, request.data)
        plugin = services.plugin_create(owner=request.user, **data)
        return Response(render_plugin(plugin), status=status.HTTP_201_CREATED)


class PluginDetailApi(APIView):
    @extend_schema(operation_id="plugins_custom_retrieve", tags=TAGS, responses=JSON_DOC)
    def get(self, request: Request, plugin_id: str) -> Response:
        return Response(_plugin_detail(selectors.plugin_get_owned(owner=request.user, plugin_id=plugin_id)))

    @extend_schema(operation_id="plugins_custom_update", tags=TAGS, request=PluginUpdateSerializer, responses=JSON_DOC)
    def patch(self, request: Request, plugin_id: str) -> Response:
        plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=plugin_id)
        data = _valid(PluginUpdateSerializer, request.data)
        plugin = dense.plugin_embedding_model_set(plugin=plugin, name=data["embedding_model"])
        plugin.refresh_from_db()
        return Response(_plugin_detail(plugin))

    @extend_schema(operation_id="plugins_custom_delete", tags=TAGS, responses=JSON_DOC)
    def delete(self, request: Request, plugin_id: str) -> Response:
        plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=plugin_id)
        services.plugin_delete(plugin=plugin)
        return Response({"plugin_id": plugin_id, "deleted": True})


class PluginFilesApi(APIView):
    @extend_schema(operation_id="plugins_custom_files_list", tags=TAGS, responses=JSON_DOC)
    def get(self, request: Request, plugin_id: str) -> Response:
        plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=plugin_id)
        items, has_more = paginate_newest_first(
            selectors.document_list(plugin=plugin), **page_params(request.query_params)
        )
        return Response(list_page(items, has_more=has_more, render=render_document, id_key="file_id"))

    @extend_schema(
        operation_id="plugins_custom_files_upload",
        tags=TAGS,
        request={"multipart/form-data": FilesUploadSerializer},
        responses={202: JSON_DOC},
    )
    def post(self, request: Request, plugin_id: str) -> Response:
        plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=plugin_id)
        documents = services.documents_upload(plugin=plugin, uploads=_files(request))
        return Response(
            {"object": "list", "data": [render_upload(d) for d in documents]}, status=status.HTTP_202_ACCEPTED
        )


class PluginFileDetailApi(APIView):
    @extend_schema(operation_id="plugins_custom_files_retrieve", tags=TAGS, responses=JSON_DOC)
    def get(self, request: Request, plugin_id: str, file_id: str) -> Response:
        plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=plugin_id)
        return Response(render_document(selectors.document_get(plugin=plugin, document_id=file_id)))

    @extend_schema(operation_id="plugins_custom_files_delete", tags=TAGS, responses=JSON_DOC)
    def delete(self, request: Request, plugin_id: str, file_id: str) -> Response:
        plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=plugin_id)
        services.document_delete(document=selectors.document_get(plugin=plugin, document_id=file_id))
        return Response({"file_id": file_id, "deleted": True})


# --- Segments: /v1/plugin/custom/plugins/{id}/files/{id}/segments and /segments/preview -------------------


def _segment(request: Request, plugin_id: str, file_id: str, segment_id: str) -> Chunk:
    plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=plugin_id)
    document = selectors.document_get(plugin=plugin, document_id=file_id)
    return segments.segment_get(document=document, segment_id=segment_id)


class SegmentListApi(APIView):
    @extend_schema(operation_id="plugins_custom_segments_list", tags=TAGS, responses=JSON_DOC)
    def get(self, request: Request, plugin_id: str, file_id: str) -> Response:
        plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=plugin_id)
        document = selectors.document_get(plugin=plugin, document_id=file_id)
        items, has_more = segments.paginate_by_ordinal(
            segments.segment_list(document=document), **page_params(request.query_params)
        )
        return Response(list_page(items, has_more=has_more, render=render_segment, id_key="segment_id"))


class SegmentDetailApi(APIView):
    @extend_schema(operation_id="plugins_custom_segments_retrieve", tags=TAGS, responses=JSON_DOC)
    def get(self, request: Request, plugin_id: str, file_id: str, segment_id: str) -> Response:
        return Response(render_segment(_segment(request, plugin_id, file_id, segment_id)))

    @extend_schema(
        operation_id="plugins_custom_segments_update", tags=TAGS, request=SegmentUpdateSerializer, responses=JSON_DOC
    )
    def patch(self, request: Request, plugin_id: str, file_id: str, segment_id: str) -> Response:
        segment = _segment(request, plugin_id, file_id, segment_id)
        data = _valid(SegmentUpdateSerializer, request.data)
        updated = segments.segment_update(segment=segment, text=data.get("text"), enabled=data.get("enabled"))
        return Response(render_segment(updated))


class SegmentPreviewApi(APIView):
    @extend_schema(
        operation_id="plugins_custom_segments_preview",
        tags=TAGS,
        request={"application/json": SegmentPreviewSerializer, "multipart/form-data": FilesUploadSerializer},
        responses=JSON_DOC,
    )
    def post(self, request: Request, plugin_id: str) -> Response:
        plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=plugin_id)
        data = request.data if isinstance(request.data, dict) else {}
        previews = segments.segments_preview(
            plugin=plugin, uploads=request.FILES.getlist("file"), text=data.get("text"), title=data.get("title")
        )
        return Response(render_preview(previews))


class PluginAvailableListApi(APIView):
    @extend_schema(operation_id="plugins_list", tags=TAGS, responses=JSON_DOC)
    def get(self, request: Request) -> Response:
        plugins = selectors.plugin_list_usable(user=request.user).order_by("-builtin", "slug")
        return Response({"object": "list", "data": [render_plugin(p) for p in plugins]})


# --- /v1/plugin/search and /v1/plugin/chat --------------------------------------------------------------


class PluginSearchApi(APIView):
    @extend_schema(operation_id="plugins_search", tags=TAGS, request=SearchSerializer, responses=JSON_DOC)
    def post(self, request: Request) -> Response:
        data = _valid(SearchSerializer, request.data)
        hits = services.plugin_search(user=request.user, **data)
        plugin = selectors.plugin_get_usable(user=request.user, plugin=data["plugin"])
        return Response({"object": "list", "data": hits, "dense": render_dense(plugin)})


def _rethink_request(request: Request, data: dict[str, Any]) -> rethink.RethinkRequest:
    ratio = data["score_ratio"] or {}
    return rethink.rethink_prepare(
        user=request.user,
        plugin=data["plugin"],
        query=data["query"],
        session=data["session"],
        search_result_num=data["search_result_num"],
        prompt_prefix=data["prompt_prefix"],
        tfidf_weight=ratio.get("tfidf"),
        embedding_weight=ratio.get("vector"),
        show_search_result=data["show_search_result"],
        model=data["model"],
        temperature=data["temperature"],
        filters=data["filters"],
        score_threshold=data["score_threshold"],
        rerank=data["rerank"],
    )


class PluginChatApi(APIView):
    @extend_schema(
        operation_id="plugins_chat",
        tags=TAGS,
        request=RethinkChatSerializer,
        responses={200: OpenApiResponse(description="The rethink answer, or SSE events when stream")},
    )
    def post(self, request: Request) -> Any:
        started = time.monotonic()
        data = _valid(RethinkChatSerializer, request.data)
        prepared = _rethink_request(request, data)
        results: list[GenerationResult] = []
        if not data["stream"]:
            try:
                body = rethink.rethink(prepared, usage=results)
            finally:
                request_usage_record(request, model=prepared.model.id, results=results, started=started)
            return Response(body)

        def on_error(exc: DomainError) -> list[Any]:
            body = domain_error_body(exc)
            return [{"finished": True, **body}]

        events = guarded_stream(
            rethink.rethink_events(prepared, usage=results, stream=True),
            on_error=on_error,
            on_close=lambda: request_usage_record(request, model=prepared.model.id, results=results, started=started),
        )
        return sse_response(events)


# --- Legacy /bot-service/ -------------------------------------------------------------------------------


class LegacyCreateApi(LegacyApi):
    @extend_schema(
        operation_id="legacy_plugin_create", tags=["legacy"], request=LegacyCreateSerializer, responses=JSON_DOC
    )
    def post(self, request: Request) -> Response:
        plugin = services.plugin_create(owner=request.user, **_valid(LegacyCreateSerializer, request.data))
        return legacy_ok(render_plugin(plugin))


class LegacyListApi(LegacyApi):
    @extend_schema(operation_id="legacy_plugin_list", tags=["legacy"], responses=JSON_DOC)
    def get(self, request: Request) -> Response:
        return legacy_ok({"list": [render_plugin(p) for p in selectors.plugin_list_owned(owner=request.user)]})

    @extend_schema(operation_id="legacy_plugin_list_post", tags=["legacy"], request=None, responses=JSON_DOC)
    def post(self, request: Request) -> Response:
        return self.get(request)


class LegacyDeleteApi(LegacyApi):
    @extend_schema(
        operation_id="legacy_plugin_delete", tags=["legacy"], request=LegacyPluginIdSerializer, responses=JSON_DOC
    )
    def post(self, request: Request) -> Response:
        data = _valid(LegacyPluginIdSerializer, request.data)
        plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=data["pluginId"])
        services.plugin_delete(plugin=plugin)
        return legacy_ok({"pluginId": data["pluginId"], "deleted": True})


class LegacyUploadApi(LegacyApi):
    @extend_schema(
        operation_id="legacy_plugin_upload",
        tags=["legacy"],
        request={"multipart/form-data": LegacyUploadSerializer},
        responses=JSON_DOC,
    )
    def post(self, request: Request) -> Response:
        plugin_id = request.data.get("pluginId")
        if not plugin_id:
            raise InvalidRequest("pluginId is required.", param="pluginId")
        plugin = selectors.plugin_get_owned(owner=request.user, plugin_id=str(plugin_id))
        documents = services.documents_upload(plugin=plugin, uploads=_files(request))
        return legacy_ok({"files": [render_upload(d) for d in documents]})


class LegacyRethinkApi(LegacyApi):
    @extend_schema(operation_id="legacy_rethink", tags=["legacy"], request=LegacyRethinkSerializer, responses=JSON_DOC)
    def post(self, request: Request) -> Response:
        started = time.monotonic()
        data = _valid(LegacyRethinkSerializer, request.data)
        prepared = rethink.rethink_prepare(
            user=request.user,
            plugin=data["pluginName"],
            query=data["text"],
            search_result_num=data["searchResultNum"],
            model=data["modelVersion"],
            show_search_result=True,
        )
        results: list[GenerationResult] = []
        try:
            body = rethink.rethink(prepared, usage=results)
        finally:
            request_usage_record(request, model=prepared.model.id, results=results, started=started)
        return legacy_ok(
            {"result": [body["result"]], "steps": body["steps"], "search_result": body.get("search_result", [])}
        )
