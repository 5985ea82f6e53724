from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.caller import request_user
from apps.core.errors import domain_error_body
from apps.core.legacy import LegacyApi, legacy_ok
from apps.core.pagination import page_params, paginate_newest_first
from apps.core.schema import SSE_EVENT
from apps.core.serializers import page_of
from apps.core.sse import guarded_stream, sse_response
from apps.plugins import dense, rethink, segments, selectors
from apps.plugins.models import Chunk, Plugin
from apps.plugins.responses import (
    LegacyPluginDeletedEnvelope,
    LegacyPluginEnvelope,
    LegacyPluginListEnvelope,
    LegacyRethinkEnvelope,
    LegacyUploadListEnvelope,
    OwnedPluginListSerializer,
    PluginDeletedSerializer,
    PluginDetailSerializer,
    PluginFileDeletedSerializer,
    PluginFilePageSerializer,
    PluginFileSerializer,
    PluginFilesSerializer,
    PluginIdDeletedSerializer,
    PluginListSerializer,
    PluginPageSerializer,
    PluginSerializer,
    PluginUploadListSerializer,
    RethinkAnswerSerializer,
    RethinkSerializer,
    SearchResultSerializer,
    SegmentPageSerializer,
    SegmentPreviewResultSerializer,
    SegmentSerializer,
)
from apps.plugins.serializers import (
    FilesFormSerializer,
    FilesUploadSerializer,
    LegacyCreateSerializer,
    LegacyPluginIdSerializer,
    LegacyPluginUploadSerializer,
    LegacyRethinkSerializer,
    PluginCreateSerializer,
    PluginUpdateSerializer,
    RethinkChatSerializer,
    SearchSerializer,
    SegmentPreviewInputSerializer,
    SegmentPreviewSerializer,
    SegmentUpdateSerializer,
)
from apps.plugins.services import catalogue, documents
from apps.usage.recording import request_usage_record
from workers.errors import DomainError, InvalidRequest
from workers.runtime.specs import GenerationResult

Handler = TypeVar("Handler", bound=Callable[..., Any])

TAGS = ["plugins"]
# The body's one documented media type (forms are parsed too): a generated client sends JSON.
JSON = "application/json"
STREAM_EVENTS = (
    "With `stream`: one JSON object per `data:` line: "
    '`{"finished": false, "step": {"action", "observation", ...}}` as the work happens, '
    '`{"finished": false, "delta": "<text>"}` for the revised answer\'s tokens, then the answer as without '
    '`stream` plus `"finished": true`; a failure after the start ends the stream with '
    '`{"finished": true, "error": {...}}` (OpenAI\'s error object).'
)


def _valid(serializer_class: type, data: object) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _legacy_schema(
    operation_id: str, *, request: type | None, responses: object, media_type: str = JSON
) -> Callable[[Handler], Handler]:
    """A ``/bot-service/`` operation's schema: tagged legacy, its body in ``media_type``."""
    body = {media_type: request} if request is not None else None
    return extend_schema(operation_id=operation_id, tags=["legacy"], request=body, responses=responses)


def _owned(request: Request, plugin_id: str) -> Plugin:
    return selectors.plugin_get_owned(owner=request_user(request), plugin_id=plugin_id)


# --- /v1/plugin/custom/plugins --------------------------------------------------------------------------


class PluginListCreateApi(APIView):
    @extend_schema(operation_id="plugins_custom_list", tags=TAGS, responses=PluginPageSerializer)
    def get(self, request: Request) -> Response:
        items, has_more = paginate_newest_first(
            selectors.plugin_list_owned(owner=request_user(request)), **page_params(request.query_params)
        )
        return Response(PluginPageSerializer(page_of(items, has_more=has_more)).data)

    @extend_schema(
        operation_id="plugins_custom_create",
        tags=TAGS,
        request={JSON: PluginCreateSerializer},
        responses={201: PluginSerializer},
    )
    def post(self, request: Request) -> Response:
        data = _valid(PluginCreateSerializer, request.data)
        plugin = catalogue.plugin_create(owner=request_user(request), **data)
        return Response(PluginSerializer(plugin).data, status=status.HTTP_201_CREATED)


class PluginDetailApi(APIView):
    @extend_schema(operation_id="plugins_custom_retrieve", tags=TAGS, responses=PluginDetailSerializer)
    def get(self, request: Request, plugin_id: str) -> Response:
        plugin = _owned(request, plugin_id)
        return Response(PluginDetailSerializer(plugin).data)

    @extend_schema(
        operation_id="plugins_custom_update",
        tags=TAGS,
        request={JSON: PluginUpdateSerializer},
        responses=PluginDetailSerializer,
    )
    def patch(self, request: Request, plugin_id: str) -> Response:
        plugin = _owned(request, plugin_id)
        data = _valid(PluginUpdateSerializer, request.data)
        plugin = dense.plugin_embedding_model_set(plugin=plugin, name=data["embedding_model"])
        plugin.refresh_from_db()
        return Response(PluginDetailSerializer(plugin).data)

    @extend_schema(operation_id="plugins_custom_delete", tags=TAGS, responses={200: PluginDeletedSerializer})
    def delete(self, request: Request, plugin_id: str) -> Response:
        plugin = _owned(request, plugin_id)
        catalogue.plugin_delete(plugin=plugin)
        return Response(PluginDeletedSerializer({"plugin_id": plugin_id, "deleted": True}).data)


class PluginFilesApi(APIView):
    @extend_schema(operation_id="plugins_custom_files_list", tags=TAGS, responses=PluginFilePageSerializer)
    def get(self, request: Request, plugin_id: str) -> Response:
        plugin = _owned(request, plugin_id)
        items, has_more = paginate_newest_first(
            selectors.document_list(plugin=plugin), **page_params(request.query_params)
        )
        return Response(PluginFilePageSerializer(page_of(items, has_more=has_more)).data)

    @extend_schema(
        operation_id="plugins_custom_files_upload",
        tags=TAGS,
        request={"multipart/form-data": FilesUploadSerializer},
        responses={202: PluginUploadListSerializer},
    )
    def post(self, request: Request, plugin_id: str) -> Response:
        plugin = _owned(request, plugin_id)
        _valid(FilesFormSerializer, request.data if isinstance(request.data, dict) else {})
        queued = documents.documents_upload(plugin=plugin, uploads=request.FILES.getlist("file"))
        return Response(PluginUploadListSerializer({"data": queued}).data, status=status.HTTP_202_ACCEPTED)


class PluginFileDetailApi(APIView):
    @extend_schema(operation_id="plugins_custom_files_retrieve", tags=TAGS, responses=PluginFileSerializer)
    def get(self, request: Request, plugin_id: str, file_id: str) -> Response:
        plugin = _owned(request, plugin_id)
        return Response(PluginFileSerializer(selectors.document_get(plugin=plugin, document_id=file_id)).data)

    @extend_schema(operation_id="plugins_custom_files_delete", tags=TAGS, responses={200: PluginFileDeletedSerializer})
    def delete(self, request: Request, plugin_id: str, file_id: str) -> Response:
        plugin = _owned(request, plugin_id)
        documents.document_delete(document=selectors.document_get(plugin=plugin, document_id=file_id))
        return Response(PluginFileDeletedSerializer({"file_id": file_id, "deleted": True}).data)


# --- Segments: /v1/plugin/custom/plugins/{id}/files/{id}/segments and /segments/preview -------------------


def _segment(request: Request, plugin_id: str, file_id: str, segment_id: str) -> Chunk:
    plugin = _owned(request, plugin_id)
    document = selectors.document_get(plugin=plugin, document_id=file_id)
    return segments.segment_get(document=document, segment_id=segment_id)


class SegmentListApi(APIView):
    @extend_schema(operation_id="plugins_custom_segments_list", tags=TAGS, responses=SegmentPageSerializer)
    def get(self, request: Request, plugin_id: str, file_id: str) -> Response:
        plugin = _owned(request, plugin_id)
        document = selectors.document_get(plugin=plugin, document_id=file_id)
        items, has_more = segments.paginate_by_ordinal(
            segments.segment_list(document=document), **page_params(request.query_params)
        )
        return Response(SegmentPageSerializer(page_of(items, has_more=has_more)).data)


class SegmentDetailApi(APIView):
    @extend_schema(operation_id="plugins_custom_segments_retrieve", tags=TAGS, responses=SegmentSerializer)
    def get(self, request: Request, plugin_id: str, file_id: str, segment_id: str) -> Response:
        return Response(SegmentSerializer(_segment(request, plugin_id, file_id, segment_id)).data)

    @extend_schema(
        operation_id="plugins_custom_segments_update",
        tags=TAGS,
        request={JSON: SegmentUpdateSerializer},
        responses=SegmentSerializer,
    )
    def patch(self, request: Request, plugin_id: str, file_id: str, segment_id: str) -> Response:
        segment = _segment(request, plugin_id, file_id, segment_id)
        data = _valid(SegmentUpdateSerializer, request.data)
        updated = segments.segment_update(segment=segment, text=data.get("text"), enabled=data.get("enabled"))
        return Response(SegmentSerializer(updated).data)


class SegmentPreviewApi(APIView):
    @extend_schema(
        operation_id="plugins_custom_segments_preview",
        tags=TAGS,
        request={"application/json": SegmentPreviewSerializer, "multipart/form-data": FilesUploadSerializer},
        responses=SegmentPreviewResultSerializer,
    )
    def post(self, request: Request, plugin_id: str) -> Response:
        plugin = _owned(request, plugin_id)
        data = _valid(SegmentPreviewInputSerializer, request.data if isinstance(request.data, dict) else {})
        previews = segments.segments_preview(
            plugin=plugin, uploads=request.FILES.getlist("file"), text=data.get("text"), title=data.get("title")
        )
        return Response(SegmentPreviewResultSerializer({"data": previews}).data)


class PluginAvailableListApi(APIView):
    @extend_schema(operation_id="plugins_list", tags=TAGS, responses=PluginListSerializer)
    def get(self, request: Request) -> Response:
        plugins = selectors.plugin_list_usable(user=request_user(request)).order_by("-builtin", "slug")
        return Response(PluginListSerializer({"data": plugins}).data)


# --- /v1/plugin/search and /v1/plugin/chat --------------------------------------------------------------


class PluginSearchApi(APIView):
    @extend_schema(
        operation_id="plugins_search", tags=TAGS, request={JSON: SearchSerializer}, responses=SearchResultSerializer
    )
    def post(self, request: Request) -> Response:
        data = _valid(SearchSerializer, request.data)
        plugin = selectors.plugin_get_usable(user=request_user(request), plugin=data.pop("plugin"))
        hits = selectors.plugin_search_in(plugin=plugin, **data)
        return Response(SearchResultSerializer({"data": hits, "dense": plugin}).data)


def _rethink_request(request: Request, data: dict[str, Any]) -> rethink.RethinkRequest:
    ratio = data["score_ratio"] or {}
    return rethink.rethink_prepare(
        user=request_user(request),
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
        max_tokens=data["max_tokens"],
        filters=data["filters"],
        score_threshold=data["score_threshold"],
        rerank=data["rerank"],
    )


def _answer(request: Request, prepared: rethink.RethinkRequest, *, started: float) -> dict[str, Any]:
    """The whole rethink answer; its usage is recorded whether or not it succeeds."""
    results: list[GenerationResult] = []
    try:
        return rethink.rethink(prepared, usage=results)
    finally:
        request_usage_record(request, model=prepared.model.id, results=results, started=started)


class PluginChatApi(APIView):
    @extend_schema(
        operation_id="plugins_chat",
        tags=TAGS,
        request={JSON: RethinkChatSerializer},
        responses={
            (200, "application/json"): RethinkSerializer,
            (200, "text/event-stream"): OpenApiResponse(SSE_EVENT, description=STREAM_EVENTS),
        },
    )
    def post(self, request: Request) -> Any:
        started = time.monotonic()
        data = _valid(RethinkChatSerializer, request.data)
        prepared = _rethink_request(request, data)
        if not data["stream"]:
            return Response(RethinkSerializer(_answer(request, prepared, started=started)).data)

        def on_error(exc: DomainError) -> list[Any]:
            body = domain_error_body(exc)
            return [{"finished": True, **body}]

        results: list[GenerationResult] = []
        events = guarded_stream(
            rethink.rethink_events(prepared, usage=results, stream=True),
            on_error=on_error,
            on_close=lambda: request_usage_record(request, model=prepared.model.id, results=results, started=started),
        )
        return sse_response(events)


# --- Legacy /bot-service/ -------------------------------------------------------------------------------


class LegacyCreateApi(LegacyApi):
    @_legacy_schema("legacy_plugin_create", request=LegacyCreateSerializer, responses=LegacyPluginEnvelope)
    def post(self, request: Request) -> Response:
        plugin = catalogue.plugin_create(owner=request_user(request), **_valid(LegacyCreateSerializer, request.data))
        return legacy_ok(PluginSerializer(plugin).data)


class LegacyListApi(LegacyApi):
    @_legacy_schema("legacy_plugin_list", request=None, responses=LegacyPluginListEnvelope)
    def get(self, request: Request) -> Response:
        plugins = selectors.plugin_list_owned(owner=request_user(request))
        return legacy_ok(OwnedPluginListSerializer({"list": plugins}).data)

    @_legacy_schema("legacy_plugin_list_post", request=None, responses=LegacyPluginListEnvelope)
    def post(self, request: Request) -> Response:
        return self.get(request)


class LegacyDeleteApi(LegacyApi):
    @_legacy_schema("legacy_plugin_delete", request=LegacyPluginIdSerializer, responses=LegacyPluginDeletedEnvelope)
    def post(self, request: Request) -> Response:
        data = _valid(LegacyPluginIdSerializer, request.data)
        plugin = selectors.plugin_get_owned(owner=request_user(request), plugin_id=data["pluginId"])
        catalogue.plugin_delete(plugin=plugin)
        return legacy_ok(PluginIdDeletedSerializer({"pluginId": data["pluginId"], "deleted": True}).data)


class LegacyUploadApi(LegacyApi):
    @_legacy_schema(
        "legacy_plugin_upload",
        request=LegacyPluginUploadSerializer,
        responses=LegacyUploadListEnvelope,
        media_type="multipart/form-data",
    )
    def post(self, request: Request) -> Response:
        plugin_id = request.data.get("pluginId") if isinstance(request.data, dict) else None
        if not plugin_id:
            raise InvalidRequest("pluginId is required.", param="pluginId")
        plugin = selectors.plugin_get_owned(owner=request_user(request), plugin_id=str(plugin_id))
        queued = documents.documents_upload(plugin=plugin, uploads=request.FILES.getlist("file"))
        return legacy_ok(PluginFilesSerializer({"files": queued}).data)


class LegacyRethinkApi(LegacyApi):
    @_legacy_schema("legacy_rethink", request=LegacyRethinkSerializer, responses=LegacyRethinkEnvelope)
    def post(self, request: Request) -> Response:
        started = time.monotonic()
        data = _valid(LegacyRethinkSerializer, request.data)
        prepared = rethink.rethink_prepare(
            user=request_user(request),
            plugin=data["pluginName"],
            query=data["text"],
            search_result_num=data["searchResultNum"],
            model=data["modelVersion"],
            show_search_result=True,
        )
        return legacy_ok(RethinkAnswerSerializer(_answer(request, prepared, started=started)).data)
