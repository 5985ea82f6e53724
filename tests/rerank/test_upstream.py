"""Upstream rerank models: the Jina/Cohere/vLLM shape against this platform's own ``/v1/rerank`` (a live server),
and the TEI shape against a small local HTTP server that mimics TEI's ``POST /rerank`` (the platform does not
speak TEI's request shape, so it cannot stand in for it)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from apps.chat.models import ModelEndpoint

QUERY = "which animal is the biggest cat"
TEXTS = ["The cat sits on the mat.", "Tigers are the largest cats.", "Bake the bread.", "Garden tools in the shed."]


def _rerank(tenant, **body):
    return tenant.client.post("/v1/rerank", body, format="json")


def test_jina_shape_against_this_platform(live_server, tenant, reranker_endpoint):
    ModelEndpoint.objects.create(
        name="tiny-reranker-up",
        kind="rerank",
        backend="openai-upstream",
        base_url=f"{live_server.url}/v1",
        upstream_api_key=tenant.key,
        upstream_model="tiny-reranker",
    )
    local = _rerank(tenant, model="tiny-reranker", query=QUERY, documents=TEXTS).json()
    remote = _rerank(tenant, model="tiny-reranker-up", query=QUERY, documents=TEXTS, top_n=2).json()
    assert remote["model"] == "tiny-reranker-up"
    assert [(r["index"], r["document"]["text"]) for r in remote["results"]] == [
        (r["index"], r["document"]["text"]) for r in local["results"][:2]
    ]
    assert [r["relevance_score"] for r in remote["results"]] == pytest.approx(
        [r["relevance_score"] for r in local["results"][:2]], abs=1e-6
    )
    assert remote["usage"] == local["usage"]  # the upstream's usage.total_tokens

    ModelEndpoint.objects.filter(name="tiny-reranker-up").update(upstream_model="nope")
    response = _rerank(tenant, model="tiny-reranker-up", query=QUERY, documents=TEXTS)
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_error"
    assert "404" in response.json()["error"]["message"]


@dataclass
class FakeTei:
    url: str
    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def fake_tei(cross_encoder_scores) -> Iterator[FakeTei]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            tei.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
            if tei.mode == "slow":
                time.sleep(1.5)
            if tei.mode == "error":
                return self._send(500, b'{"error": "model overloaded", "error_type": "overloaded"}')
            if tei.mode == "garbage":
                return self._send(200, b"<html>not json</html>")
            scores = cross_encoder_scores(body["query"], body["texts"])
            results = sorted(({"index": i, "score": s} for i, s in enumerate(scores)), key=lambda r: -r["score"])
            if tei.mode == "partial":
                results = results[:-1]
            return self._send(200, json.dumps(results).encode())

        def _send(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):  # the slow mode's client has given up
                self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tei = FakeTei(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tei
    server.shutdown()
    server.server_close()


@pytest.fixture
def tei_endpoint(db, fake_tei) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        name="tei-reranker",
        kind="rerank",
        backend="openai-upstream",
        base_url=fake_tei.url,
        rerank_api="tei",
        upstream_api_key="secret",
    )


def test_tei_shape(tenant, fake_tei, tei_endpoint, cross_encoder_scores):
    texts = [f"{TEXTS[i % 4]} {i}" for i in range(40)]  # more than TEI's default client batch of 32
    scores = cross_encoder_scores(QUERY, texts)
    response = _rerank(tenant, model="tei-reranker", query=QUERY, documents=texts, top_n=5)
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["index"] for r in results] == sorted(range(40), key=lambda i: -scores[i])[:5]
    assert [r["relevance_score"] for r in results] == pytest.approx([scores[r["index"]] for r in results], abs=1e-6)
    assert [len(r["body"]["texts"]) for r in fake_tei.requests] == [32, 8]
    first = fake_tei.requests[0]
    assert first["path"] == "/rerank" and first["auth"] == "Bearer secret"
    assert first["body"]["query"] == QUERY and first["body"]["raw_scores"] is False


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("error", 502, "upstream_error"),
        ("garbage", 502, "upstream_error"),
        ("partial", 502, "upstream_error"),
        ("slow", 504, "upstream_timeout"),
    ],
)
def test_tei_failures_are_502_or_504(tenant, fake_tei, tei_endpoint, settings, mode, status, code):
    settings.RERANK_TIMEOUT_S = 0.5
    fake_tei.mode = mode
    response = _rerank(tenant, model="tei-reranker", query=QUERY, documents=TEXTS)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code


def test_an_unreachable_upstream_is_502(tenant, db):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ModelEndpoint.objects.create(
        name="down-reranker", kind="rerank", backend="openai-upstream", base_url=f"http://127.0.0.1:{port}/v1"
    )
    response = _rerank(tenant, model="down-reranker", query=QUERY, documents=TEXTS)
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_error"
