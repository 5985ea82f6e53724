"""Who may read ``/metrics``: a request from an allowed network (``METRICS_ALLOWED_CIDRS``, loopback by default),
or one that presents ``METRICS_TOKEN`` as a bearer token."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Denial:
    status_code: int
    code: str
    message: str


def _from_allowed_network(remote_addr: str) -> bool:
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(cidr.strip(), strict=False)
        for cidr in settings.METRICS_ALLOWED_CIDRS
        if cidr.strip()
    )


def metrics_access_denial(*, remote_addr: str, authorization: str) -> Denial | None:
    """Why the request may not read the metrics, or None when it may. A presented token must be the right one
    (even from an allowed network); without one, the request's address decides."""
    expected = settings.METRICS_TOKEN
    scheme, _, presented = authorization.partition(" ")
    if authorization:
        if (
            expected
            and scheme.lower() == "bearer"
            and hmac.compare_digest(presented.strip().encode(), expected.encode())
        ):
            return None
        return Denial(401, "invalid_metrics_token", "The metrics token is not valid.")
    if _from_allowed_network(remote_addr):
        return None
    if expected:
        return Denial(
            401, "metrics_token_required", "Metrics need 'Authorization: Bearer <METRICS_TOKEN>' from this address."
        )
    return Denial(
        403,
        "metrics_forbidden",
        "Metrics are not readable from this address (METRICS_ALLOWED_CIDRS; no METRICS_TOKEN is set).",
    )
