"""Gives each request its id (``X-Request-ID`` in and out) and writes its one access log line.

For a streaming response the line is written when the stream ends (status, bytes and duration are only known
then), and the id stays bound while the stream is produced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.functional import SimpleLazyObject, empty

from apps.core.request_id import bind_request_id, clean_request_id

HEADER = "X-Request-ID"
logger = logging.getLogger("tigerplatform.access")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = clean_request_id(request.headers.get(HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.monotonic()
        with bind_request_id(request_id):
            response = self.get_response(request)
            response[HEADER] = request_id
            if isinstance(response, FileResponse) or (
                isinstance(response, StreamingHttpResponse) and response.is_async
            ):
                # Left as it is, so the server can still send the file itself (sendfile); its size is known.
                log_access(
                    request=request,
                    status=response.status_code,
                    size=int(response.get("Content-Length") or 0),
                    duration_s=time.monotonic() - started,
                )
            elif isinstance(response, StreamingHttpResponse):
                response.streaming_content = _streamed(
                    response.streaming_content,
                    request=request,
                    response=response,
                    request_id=request_id,
                    started=started,
                )
            else:
                log_access(
                    request=request,
                    status=response.status_code,
                    size=len(response.content),
                    duration_s=time.monotonic() - started,
                )
        return response


def _streamed(
    chunks: Iterable[bytes], *, request: HttpRequest, response: StreamingHttpResponse, request_id: str, started: float
) -> Iterator[bytes]:
    """The stream, produced with the request id bound, then its access line (also when the client left)."""
    iterator = iter(chunks)
    size = 0
    try:
        while True:
            with bind_request_id(request_id):
                chunk = next(iterator, None)
            if chunk is None:
                break
            size += len(chunk)
            yield chunk
    finally:
        with bind_request_id(request_id):
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            log_access(request=request, status=response.status_code, size=size, duration_s=time.monotonic() - started)


def log_access(*, request: HttpRequest, status: int, size: int, duration_s: float) -> None:
    match = request.resolver_match
    route = "/" + match.route if match is not None and match.route else None
    duration_ms = round(duration_s * 1000, 1)
    api_key = getattr(request, "auth", None)
    logger.info(
        "%s %s %s %.1fms %dB",
        request.method,
        request.path,
        status,
        duration_ms,
        size,
        extra={
            "event": "access",
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "bytes": size,
            "user_id": _user_id(request),
            "api_key_id": getattr(api_key, "pk", None),
        },
    )


def _user_id(request: HttpRequest) -> int | None:
    # Only a user something already resolved: loading the session user just for a log line costs a query.
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return None
    return getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
