"""Content negotiation for endpoints whose answer has one type whatever the client asks for."""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request


class IgnoreAcceptHeader(DefaultContentNegotiation):
    """Answer with the view's first renderer: a file download (the openai SDK sends ``Accept:
    application/binary``) is the file's bytes, and its errors JSON, whatever the Accept header says."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type
