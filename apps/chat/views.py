from __future__ import annotations

import time
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.chat import dialects
from apps.chat.completion import PreparedChat, chat_completion_run, chat_request_prepare
from apps.chat.protocol import ChatCompletionResponse, Model, ModelList
from apps.chat.selectors import chat_model_get, model_list
from apps.chat.serializers import (
    GptResultSerializer,
    LegacyGptSerializer,
    OpenAIChatSerializer,
    TigerBotChatSerializer,
)
from apps.chat.services import chat_complete, chat_stream_choices
from apps.core.caller import request_user
from apps.core.errors import domain_error_body
from apps.core.legacy import LegacyApi, legacy_ok
from apps.core.schema import json_or_event_stream, legacy_envelope
from apps.core.sse import DONE, guarded_stream, sse_response
from apps.usage.recording import request_usage_record
from workers.errors import DomainError
from workers.runtime.specs import ChatMessage, GenerationRequest, GenerationResult, SamplingParams


class ModelListApi(APIView):
    @extend_schema(
        operation_id="models_list",
        tags=["models"],
        responses={200: ModelList},
    )
    def get(self, request: Request) -> Response:
        models = [Model.model_validate(row) for row in model_list(user=request_user(request))]
        return Response(ModelList(object="list", data=models).dump())


_CHAT_DOC = (
    "OpenAI dialect (body has `messages`): a ChatCompletion; with stream=true, `data: <ChatCompletionChunk>` events "
    "ending with `data: [DONE]`. TigerBot dialect (body has `query`): a TigerBotCompletion; with stream=true, "
    "`data: <TigerBotChunk>` events ({finished: false, new_text}), then one `data: <TigerBotFinal>`. An error after "
    "a stream started is an event with `error` (OpenAI's error object), followed by `[DONE]` in the OpenAI dialect."
)


class ChatCompletionsApi(APIView):
    @extend_schema(
        operation_id="chat_completions_create",
        tags=["chat"],
        request=PolymorphicProxySerializer(
            component_name="ChatCompletionRequest",
            serializers=[OpenAIChatSerializer, TigerBotChatSerializer],
            resource_type_field_name=None,
        ),
        responses=json_or_event_stream(ChatCompletionResponse, description=_CHAT_DOC),
    )
    def post(self, request: Request) -> Response | StreamingHttpResponse:
        started = time.monotonic()
        prepared = chat_request_prepare(user=request_user(request), body=request.data)
        if prepared.chat.stream:
            return self._stream(request, prepared, started)
        completion = chat_completion_run(prepared=prepared)
        request_usage_record(request, model=completion.model, started=started, results=[completion.result])
        return Response(completion.body)

    def _stream(self, request: Request, prepared: PreparedChat, started: float) -> StreamingHttpResponse:
        chat, model, sources = prepared.chat, prepared.served.id, prepared.sources
        choices = chat_stream_choices(request=prepared.request, n=chat.n)
        finished: list[GenerationResult] = []
        head = {"sources": sources, **prepared.search_fields} if sources is not None else None
        if chat.dialect == "openai":
            events = dialects.openai_stream(
                model=model,
                choices=[dialects.recording(c, finished) for c in choices],
                include_usage=chat.include_usage,
                head=head,
            )

            def on_error(exc: DomainError) -> list[Any]:
                return [domain_error_body(exc), DONE]
        else:
            events = dialects.tigerbot_stream(chunks=dialects.recording(choices[0], finished), head=head)

            def on_error(exc: DomainError) -> list[Any]:
                error = domain_error_body(exc)
                return [{"finished": True, **error}]

        def on_close() -> None:
            for chunks in choices:  # a client gone, even before the first token: stop what still generates
                chunks.close()
            complete = len(finished) == len(choices)
            request_usage_record(
                request,
                model=model,
                started=started,
                results=[dialects.combined_usage(finished)] if finished else [],
                status_code=200 if complete else 499,
            )

        return sse_response(guarded_stream(events, on_error=on_error, on_close=on_close))


class LegacyGptApi(LegacyApi):
    """TigerBot's legacy chat: `{text, modelVersion}`, answered in TigerBot's `{code, msg, data}` envelope."""

    @extend_schema(
        operation_id="legacy_gpt",
        tags=["legacy"],
        request=LegacyGptSerializer,
        responses={200: legacy_envelope(GptResultSerializer)},
    )
    def post(self, request: Request) -> Response:
        serializer = LegacyGptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        served = chat_model_get(user=request_user(request), model=data.get("modelVersion") or None)
        started = time.monotonic()
        messages = [ChatMessage(role="user", content=data["text"])]
        result = chat_complete(request=GenerationRequest(spec=served.spec, messages=messages, params=SamplingParams()))
        request_usage_record(request, model=served.id, started=started, results=[result])
        return legacy_ok(GptResultSerializer({"result": [result.text]}).data)
