"""A fake web search engine (SearxNG's JSON API) on a local port: the only thing these tests fake is the internet."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

RESULTS = [
    {
        "title": "Paris - Wikipedia",
        "url": "https://en.wikipedia.org/wiki/Paris",
        "content": "Paris is the capital and largest city of France.",
        "engine": "wikipedia",
    },
    {
        "title": "France",
        "url": "https://example.org/france",
        "content": "France is a country in Europe.",
        "engine": "duckduckgo",
    },
]


class FakeSearxng:
    def __init__(self) -> None:
        self.queries: list[str] = []
        self.fail = False

    def __call__(self, *args: object) -> BaseHTTPRequestHandler:
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                engine.queries.append(query.get("q", [""])[0])
                status, body = (500, b"boom") if engine.fail else (200, json.dumps({"results": RESULTS}).encode())
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler(*args)


@pytest.fixture
def searxng(settings) -> Iterator[FakeSearxng]:
    fake = FakeSearxng()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SEARXNG_URL = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
