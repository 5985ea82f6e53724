"""``GET /metrics``: Prometheus exposition, for allowed networks or bearers of ``METRICS_TOKEN`` only.

A plain Django view, not a DRF one: it is no part of the API (nor of its OpenAPI schema) and takes no API key.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from apps.core.errors import error_body
from apps.metrics.access import metrics_access_denial
from apps.metrics.exposition import render


def metrics_view(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse(
            error_body(message=f"Method {request.method} is not allowed.", code="method_not_allowed", status_code=405),
            status=405,
        )
        response["Allow"] = "GET, HEAD"
        return response
    denial = metrics_access_denial(
        remote_addr=request.META.get("REMOTE_ADDR", ""), authorization=request.headers.get("Authorization", "")
    )
    if denial is not None:
        response = JsonResponse(
            error_body(message=denial.message, code=denial.code, status_code=denial.status_code),
            status=denial.status_code,
        )
        if denial.status_code == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = render(accept=request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
