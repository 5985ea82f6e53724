"""Usage of one answered API request, recorded by the view that answered it (any app's generation endpoint)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Protocol

from rest_framework.request import Request

from apps.usage.services import usage_record


class TokenCounts(Protocol):
    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...


def request_usage_record(
    request: Request, *, model: str, started: float, results: Iterable[TokenCounts], status_code: int = 200
) -> None:
    """Bills the tokens of ``results`` (one per generation the request made; none when it failed) to the caller."""
    results = list(results)
    if request.user.pk is None:
        raise ValueError("usage is recorded for authenticated requests only")
    usage_record(
        owner_id=request.user.pk,
        api_key_id=request.auth.pk,
        route=request.path,
        model=model,
        prompt_tokens=sum(result.prompt_tokens for result in results),
        completion_tokens=sum(result.completion_tokens for result in results),
        latency_ms=int((time.monotonic() - started) * 1000),
        status_code=status_code,
    )
