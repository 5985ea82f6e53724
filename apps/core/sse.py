"""Server-sent events over Django's streaming response (works under gunicorn's threaded workers)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import StreamingHttpResponse

DONE = object()
"""Yield this to send OpenAI's closing ``data: [DONE]``."""


def _encode(events: Iterable[Any]) -> Iterator[bytes]:
    for event in events:
        if event is DONE:
            yield b"data: [DONE]\n\n"
        else:
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def sse_response(events: Iterable[Any]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(_encode(events), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response
