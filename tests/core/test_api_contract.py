"""Contract check: schemathesis drives every operation of /api/schema/ with generated requests, valid ones
(positive phase) and invalid ones (negative phase), authenticated with a real API key. No answer may be a server
error, every answer must match the status codes, content type and body its operation declares, invalid requests
must be rejected, and no operation may reject most of the valid requests its own schema describes.

Run it alone: ``.venv/bin/python -m pytest tests/core/test_api_contract.py``. Requests go through the WSGI
application in this process, inside the test's transaction: background jobs a request schedules on commit
(fine-tunes, ingests, batches) are never started. The default chat model is a tiny random one that answers at
most ``MODEL_MAX_TOKENS`` tokens, so chat and completion answers are generated and checked against their schema.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from apps.chat.services import model_endpoint_register
from apps.core.dispatch import wait_for_embedded_tasks
from tests.conftest import Tenant
from tests.text.conftest import build_pdf, text_page
from tigerplatform.wsgi import application
from workers.runtime.tiny import make_tiny_model

# Generated examples per operation (fuzzing phase), on top of schemathesis' deterministic coverage cases (boundary
# values, missing or wrong-typed fields, unexpected methods): about 80 requests per operation in all.
MAX_EXAMPLES = 10
STATUSES: Counter[int] = Counter()
SECONDS: Counter[str] = Counter()
# Valid requests (positive phase) per operation, and how many of them were refused as malformed (400, 413, 415,
# 422). A 404 for an id the generator made up is the right answer to a well-formed request, not a rejection.
POSITIVE: Counter[str] = Counter()
REFUSED: Counter[str] = Counter()
REFUSAL_CODES: Counter[tuple[str, str]] = Counter()
REFUSAL_STATUSES = {400, 413, 415, 422}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# A cursor (`after`) names an object of the list: one the generator made up is refused like an unknown id (a 404),
# the right answer to a well-formed request, not a refusal of its shape.
# Likewise a request that names no model where the deployment configured no default of that kind (images,
# rerank here): a fact of the deployment, not of the request.
REFERENCE_CODES = {"invalid_cursor", "model_required"}
# What a file must hold (training records, a PDF) is beyond a schema's `format: binary`: valid requests carry one.
TRAINING_JSONL = b'{"instruction": "What is 2+2?", "output": "4"}\n'
BATCH_JSONL = (
    b'{"custom_id": "1", "method": "POST", "url": "/v1/chat/completions", '
    b'"body": {"messages": [{"role": "user", "content": "hi"}]}}\n'
)
PDF = build_pdf(contents=[text_page("Hello")])
VALID_FILES = {
    "POST /v1/files": TRAINING_JSONL,
    "POST /v1/finetunes": TRAINING_JSONL,
    "POST /bot-service/ft/upload_train_data": TRAINING_JSONL,
    "POST /v1/pdf2text": PDF,
    "POST /v1/summarization": PDF,
}
# A model's own output limit is not part of the schema (it differs per model, as at OpenAI, which also answers a
# larger max_tokens with a 400): valid requests ask for at most this many, the tiny model's limit.
MODEL_MAX_TOKENS = 8
MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens", "max_new_tokens")


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("contract") / "chat", family="hf-template")


@pytest.fixture
def bearer(make_tenant: Callable[..., Tenant], settings: Any, tiny_chat_model: Path) -> Iterator[dict[str, str]]:
    tenant = make_tenant("contract", rate_limit_per_minute=10**6)  # fuzzing, not the rate limiter
    model_endpoint_register(
        name="contract-chat",
        family="hf-template",
        path=str(tiny_chat_model),
        is_default=True,
        max_new_tokens=MODEL_MAX_TOKENS,
    )
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
# Every request carries the tenant's real key (authentication has tests of its own), and query parameters the schema
# does not name are ignored, as by most HTTP APIs, so neither is a negative case here.
schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)


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
    positive = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
    if case.operation.label == "GET /readyz":
        # A readiness probe's 503 (here: no Celery worker answers in the Redis mode) is its contract, not a crash.
        response = case.call(headers=bearer)
        assert response.status_code in (200, 405, 503), response.text
        if response.status_code == 503:
            assert response.json()["status"] == "unavailable"
    else:
        if positive and isinstance(case.body, dict):
            _make_valid_beyond_the_schema(case.operation.label, case.body, declared=_declared_fields(case))
        response = case.call_and_validate(headers=bearer, checks=CHECKS)
    STATUSES[response.status_code] += 1
    if positive:
        POSITIVE[case.operation.label] += 1
        if response.status_code in REFUSAL_STATUSES and _error_code(response).split()[0] not in REFERENCE_CODES:
            REFUSED[case.operation.label] += 1
            REFUSAL_CODES[case.operation.label, _error_code(response)] += 1
    SECONDS[case.operation.label] += time.monotonic() - started


def _declared_fields(case: Any) -> set[str]:
    """The top-level fields the request body's schema names (those of every alternative of a ``oneOf``)."""
    for body in case.operation.body:
        if body.media_type == case.media_type:
            schema = body.resolved_schema
            bundled = schema.get("x-bundled", {})
            alternatives = [
                bundled.get(alt.get("$ref", "").rsplit("/", 1)[-1], alt) for alt in schema.get("oneOf", [schema])
            ]
            return {name for alternative in alternatives for name in alternative.get("properties", {})}
    return set()


def _make_valid_beyond_the_schema(label: str, body: dict[str, Any], *, declared: set[str]) -> None:
    """What a valid request also needs that no schema states: only the fields the operation declares (a /v1 body
    refuses others, as OpenAI's does, while its schema's objects allow more properties, as OpenAI's do), a token
    budget within the model's limit, a file whose content is what the operation reads, an image size the
    deployment serves, a forced tool choice only with its tool, an expiry still ahead."""
    for field in set(body) - declared if declared else ():
        del body[field]
    for field in MAX_TOKENS_FIELDS:
        if isinstance(body.get(field), int) and body[field] > MODEL_MAX_TOKENS:
            body[field] = MODEL_MAX_TOKENS
    for field in ("file", "validation_file"):
        if label in VALID_FILES and field in body:
            body[field] = BATCH_JSONL if body.get("purpose") == "batch" else VALID_FILES[label]
    if label == "POST /v1/chat/completions" and body.get("tool_choice") not in (None, "none", "auto"):
        named = body["tool_choice"].get("function", {}).get("name") if isinstance(body["tool_choice"], dict) else None
        tools = body.get("tools") if isinstance(body.get("tools"), list) else []
        if not tools or (named is not None and named not in [tool["function"]["name"] for tool in tools]):
            del body["tool_choice"]  # a forced tool choice names one of `tools`: a rule across two fields
    if label == "POST /bot-service/ai_service/text2image":  # its width × height must be one of IMAGES_SIZES
        body.update({side: 64 for side in ("width", "height") if side in body})
    if label == "POST /v1/api_keys" and body.get("expires_at"):
        body["expires_at"] = (timezone.now() + timedelta(days=1)).isoformat()


def _error_code(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return "(not JSON)"
    error = body.get("error") or (body.get("data") or {}).get("error") or {}
    return (
        f"{error.get('code')} {error.get('param')} {str(error.get('message'))[:100]}"
        if isinstance(error, dict)
        else str(body)[:60]
    )


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


def test_no_operation_rejects_most_of_its_own_schemas_requests() -> None:
    if not POSITIVE:
        pytest.skip("run together with test_no_operation_answers_with_a_server_error")
    mostly_refused = {
        label: f"{REFUSED[label]}/{sent}" for label, sent in POSITIVE.items() if REFUSED[label] * 2 > sent
    }
    reasons = {
        label: [(code, n) for (op, code), n in REFUSAL_CODES.most_common() if op == label] for label in mostly_refused
    }
    assert not mostly_refused, (
        f"operations refusing most requests their schema describes: {mostly_refused}; why: {reasons}"
    )


@pytest.mark.django_db
def test_deleting_what_exists_answers_as_declared(bearer: dict[str, str]) -> None:
    """The fuzzer's ids name nothing, so its deletions are all 404s: a real key and file are deleted here, and the
    answers checked against what their operations declare (both once documented a 204 while answering 200)."""
    key = schema["/v1/api_keys"]["POST"].Case(body={"name": "to revoke"}).call(headers=bearer)
    uploaded = (
        schema["/v1/files"]["POST"]
        .Case(body={"file": TRAINING_JSONL, "purpose": "fine-tune"}, media_type="multipart/form-data")
        .call(headers=bearer)
    )
    assert (key.status_code, uploaded.status_code) == (201, 201), (key.text, uploaded.text)
    for path, parameters in (
        ("/v1/api_keys/{key_id}", {"key_id": key.json()["id"]}),
        ("/v1/files/{file_id}", {"file_id": uploaded.json()["id"]}),
    ):
        deletion = schema[path]["DELETE"].Case(path_parameters=parameters)
        response = deletion.call_and_validate(
            headers=bearer, checks=[status_code_conformance, content_type_conformance, response_schema_conformance]
        )
        assert response.status_code == 200, response.text
