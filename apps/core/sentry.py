"""Optional error tracking: Sentry, set up by settings only when ``SENTRY_DSN`` is set (else never imported).

Events carry the request id as the ``request_id`` tag, so an error report leads to the request's log lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apps.core.request_id import get_request_id

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint


def init_sentry(*, dsn: str, environment: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        auto_enabling_integrations=False,  # else it imports every library it has an integration for (seconds)
        send_default_pii=False,  # no user e-mails, IPs, cookies or request bodies leave the platform
        before_send=tag_request_id,
        before_send_transaction=tag_request_id,
    )


def tag_request_id(event: Event, hint: Hint) -> Event:
    if (request_id := get_request_id()) is not None:
        event.setdefault("tags", {})["request_id"] = request_id
    return event
