"""Contract check: schemathesis drives every operation of /api/schema/ with generated requests (valid and
invalid ones), authenticated with a real API key, and no answer may be a server error.

Run it alone: ``.venv/bin/python -m pytest tests/core/test_api_contract.py``. Requests go through the WSGI
application in this process, inside the test's transaction: background jobs a request schedules on commit
(fine-tunes, ingests, batches) are never started, and no model is registered, so none is loaded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from apps.core.dispatch import wait_for_embedded_tasks
from tests.conftest import Tenant
from tigerplatform.wsgi import application

# Generated examples per operation (fuzzing phase), on top of schemathesis' deterministic coverage cases (boundary
# values, missing or wrong-typed fields, unexpected methods): about 80 requests per operation in all.
MAX_EXAMPLES = 10
STATUSES: Counter[int] = Counter()
SECONDS: Counter[str] = Counter()


@pytest.fixture
def bearer(make_tenant: Callable[..., Tenant], settings: Any) -> Iterator[dict[str, str]]:
    tenant = make_tenant("contract", rate_limit_per_minute=10**6)  # fuzzing, not the rate limiter
    # A deployment has a local search plugin (`make run` loads the built-in one); without any, /v1/search rightly
    # answers 502 search_unavailable. An empty plugin of the tenant's own stands in for it.
    created = tenant.client.post("/v1/plugin/custom/plugins", {"name": "contract-search"}, format="json")
    assert created.status_code == 201, created.content
    settings.SEARCH_LOCAL_PLUGIN = created.json()["plugin_id"]
    # Django's WSGI handler closes the database connection after each request; like the test client, keep it, so
    # requests run inside the test's transaction (and its in-memory SQLite database survives).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {tenant.key}"}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)
    wait_for_embedded_tasks(timeout_s=60)


schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_with_a_server_error(case: Any, bearer: dict[str, str]) -> None:
    started = time.monotonic()
    if case.operation.label == "GET /readyz":
        # A readiness probe's 503 (here: no Celery worker answers in the Redis mode) is its contract, not a crash.
        response = case.call(headers=bearer)
        assert response.status_code in (200, 405, 503), response.text
        if response.status_code == 503:
            assert response.json()["status"] == "unavailable"
    else:
        response = case.call_and_validate(headers=bearer, checks=[not_a_server_error])
    STATUSES[response.status_code] += 1
    SECONDS[case.operation.label] += time.monotonic() - started


def test_the_contract_check_reached_the_api() -> None:
    """Guards against a run that silently sent nothing, or was rejected wholesale by authentication."""
    if not STATUSES:
        pytest.skip("run together with test_no_operation_answers_with_a_server_error")
    print(
        f"contract check: {sum(STATUSES.values())} requests, statuses {sorted(STATUSES.items())}; slowest "
        f"operations (s): {[(label, round(s, 1)) for label, s in SECONDS.most_common(8)]}"
    )
    assert sum(STATUSES.values()) > 300
    assert sum(n for status, n in STATUSES.items() if 200 <= status < 300) > 50
