from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class RateLimitHeadersMiddleware:
    """Adds OpenAI-style ``x-ratelimit-*`` headers when the throttle recorded a state for the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        state = getattr(request, "ratelimit", None)
        if state is not None:
            response["x-ratelimit-limit-requests"] = str(state.limit)
            response["x-ratelimit-remaining-requests"] = str(state.remaining)
            response["x-ratelimit-reset-requests"] = f"{max(1, int(state.reset_s + 0.999))}s"
        return response
