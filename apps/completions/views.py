from __future__ import annotations

import time
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.chat import dialects
from apps.completions import responses
from apps.completions.protocol import Completion
from apps.completions.serializers import CompletionRequestSerializer
from apps.completions.services import text_completion_prepare, text_completion_run, text_completion_stream
from apps.core.caller import request_user
from apps.core.errors import domain_error_body
from apps.core.schema import json_or_event_stream
from apps.core.sse import DONE, guarded_stream, sse_response
from apps.usage.recording import request_usage_record
from workers.errors import DomainError
from workers.runtime.specs import GenerationResult

_DOC = (
    "A text_completion; with stream=true, `data: <CompletionChunk>` events ending with `data: [DONE]` (an error after "
    "the stream started is an event with `error`, OpenAI's error object, then `[DONE]`)."
)


class CompletionsApi(APIView):
    """OpenAI's legacy text completions: the prompt is continued as is, with no chat format around it."""

    @extend_schema(
        operation_id="completions_create",
        tags=["chat"],
        request=CompletionRequestSerializer,
        responses=json_or_event_stream(Completion, description=_DOC),
    )
    def post(self, request: Request) -> Response | StreamingHttpResponse:
        started = time.monotonic()
        prepared = text_completion_prepare(user=request_user(request), body=request.data)
        if not prepared.stream:
            completion = text_completion_run(prepared=prepared)
            request_usage_record(request, model=completion.model, started=started, results=[completion.usage])
            return Response(completion.body)
        choices = text_completion_stream(prepared=prepared)
        finished: list[GenerationResult] = []
        events = responses.completion_stream(
            model=prepared.served.id,
            prompts=prepared.prompts,
            choices=[dialects.recording(c, finished) for c in choices],
            n=prepared.n,
            echo=prepared.echo,
            include_usage=prepared.include_usage,
        )

        def on_error(exc: DomainError) -> list[Any]:
            return [domain_error_body(exc), DONE]

        def on_close() -> None:
            for chunks in choices:  # a client gone, even before the first token: stop what still generates
                chunks.close()
            complete = len(finished) == len(choices)
            usage = responses.total_usage(finished, n=prepared.n) if complete else None
            request_usage_record(
                request,
                model=prepared.served.id,
                started=started,
                results=[usage] if usage else [],
                status_code=200 if complete else 499,
            )

        return sse_response(guarded_stream(events, on_error=on_error, on_close=on_close))
