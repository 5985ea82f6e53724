"""A tiny random diffusers pipeline (built once per session, no download) registered as the default image model,
and a fake OpenAI-compatible image server: no real one runs in the tests."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from apps.chat.models import ModelEndpoint
from apps.core.dispatch import wait_for_embedded_tasks


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from workers.images.tiny import make_tiny_pipeline

    torch.set_num_threads(1)  # 30 steps of two 64×64 images in about a second; more threads only contend
    return make_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "pipeline")


@pytest.fixture
def image_model(transactional_db: None, tiny_pipeline: Path) -> Iterator[ModelEndpoint]:
    """Generation runs on a background thread (a serving worker's stand-in), so these tests commit."""
    yield ModelEndpoint.objects.create(
        name="tiny-sd", kind=ModelEndpoint.Kind.IMAGE, path=str(tiny_pipeline), is_default=True
    )
    wait_for_embedded_tasks(timeout_s=120)


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def solid_png(color: tuple[int, int, int], size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class FakeImageServer:
    """Answers ``POST /v1/images/generations`` with solid-colour PNGs (``b64_json``), or ``status`` if set."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def fake_image_server() -> Iterator[FakeImageServer]:
    fake = FakeImageServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.requests.append(body)
            fake.headers.append(dict(self.headers))
            if self.path != "/v1/images/generations" or fake.status != 200:
                self._answer(fake.status if fake.status != 200 else 404, {"error": {"message": "no"}})
                return
            width, _ = (int(side) for side in body["size"].split("x"))
            data = [
                {
                    "b64_json": base64.b64encode(solid_png((index * 80, 0, 0), width)).decode(),
                    "revised_prompt": f"{body['prompt']} ({index})",
                }
                for index in range(body["n"])
            ]
            self._answer(200, {"created": 1, "data": data})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_port}/v1"
    yield fake
    server.shutdown()
    server.server_close()
