"""A stand-in for vLLM's OpenAI-compatible server, for tests: vLLM needs a GPU and cannot run here.

A real HTTP server on a thread that speaks the parts of vLLM's API the platform uses, with vLLM's status codes
and messages: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions`` (plain and SSE streaming, 404
for a model it does not serve), and the runtime LoRA API ``POST /v1/load_lora_adapter`` /
``POST /v1/unload_lora_adapter`` (checks that the adapter directory exists, through ``mounts``, the way vLLM's
container would see it). Answers are deterministic (``answer(model, text)``); every request is recorded. It can
misbehave on purpose: reset the next connections, reset every connection, break the next stream after some
chunks, forget its adapters as a restart would, or lack the runtime LoRA routes.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any

BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def answer(model: str, text: str) -> str:
    return f"{model} heard: {text}"


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any] = field(default_factory=dict)


class FakeVLLM:
    def __init__(self, *, base_model: str = BASE_MODEL, mounts: dict[str, Path] | None = None) -> None:
        self.base_model = base_model
        self.mounts = mounts or {}
        self.calls: list[Call] = []
        self.loras: dict[str, str] = {}
        self.drop_next = 0
        self.drop_all = False
        self.break_next_stream_after: int | None = None
        self.runtime_lora = True
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeVLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def restart(self) -> None:
        """What a vLLM restart does to adapters loaded at runtime: they are gone."""
        with self._lock:
            self.loras.clear()

    def chat_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path == "/v1/chat/completions"]

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def _should_drop(self) -> bool:
        with self._lock:
            if self.drop_all:
                return True
            if self.drop_next > 0:
                self.drop_next -= 1
                return True
            return False

    def _visible(self, path: str) -> Path:
        for prefix, real in self.mounts.items():
            try:
                return real / PurePosixPath(path).relative_to(prefix)
            except ValueError:
                continue
        return Path(path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped connections on purpose leave broken pipes behind


def _error(message: str, kind: str, code: int) -> dict[str, Any]:
    # vLLM's ErrorResponse, flat, as its OpenAI server sends it.
    return {"object": "error", "message": message, "type": kind, "param": None, "code": code}


def _handler(fake: FakeVLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _drop(self) -> None:
            # A reset (RST), as from a crashed server, rather than an orderly close that could end a body.
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

        def _reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            fake.calls.append(Call("GET", self.path))
            if fake._should_drop():
                return self._drop()
            if self.path == "/health":
                return self._reply(200, "", "text/plain")
            if self.path == "/v1/models":
                cards = [{"id": fake.base_model, "object": "model", "root": fake.base_model, "parent": None}]
                cards += [
                    {"id": name, "object": "model", "root": path, "parent": fake.base_model}
                    for name, path in fake.loras.items()
                ]
                return self._reply(200, {"object": "list", "data": cards})
            return self._reply(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            fake.calls.append(Call("POST", self.path, body))
            if fake._should_drop():
                return self._drop()
            if self.path == "/v1/chat/completions":
                return self._chat(body)
            if self.path == "/v1/load_lora_adapter" and fake.runtime_lora:
                return self._load(body)
            if self.path == "/v1/unload_lora_adapter" and fake.runtime_lora:
                return self._unload(body)
            return self._reply(404, {"detail": "Not Found"})

        def _load(self, body: dict[str, Any]) -> None:
            name, path = body.get("lora_name"), body.get("lora_path")
            if not name or not path:
                return self._reply(
                    400, _error("Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput", 400)
                )
            with fake._lock:
                if name in fake.loras:
                    return self._reply(
                        400, _error(f"The lora adapter '{name}' has already been loaded.", "InvalidUserInput", 400)
                    )
                if not (fake._visible(path) / "adapter_config.json").is_file():
                    return self._reply(
                        404, _error(f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError", 404)
                    )
                fake.loras[name] = path
            return self._reply(200, f"Success: LoRA adapter '{name}' added successfully.", "text/plain")

        def _unload(self, body: dict[str, Any]) -> None:
            name = body.get("lora_name")
            with fake._lock:
                if name not in fake.loras:
                    return self._reply(404, _error(f"The lora adapter '{name}' cannot be found.", "NotFoundError", 404))
                del fake.loras[name]
            return self._reply(200, f"Success: LoRA adapter '{name}' removed successfully.", "text/plain")

        def _chat(self, body: dict[str, Any]) -> None:
            model = body.get("model")
            if model != fake.base_model and model not in fake.loras:
                return self._reply(404, _error(f"The model `{model}` does not exist.", "NotFoundError", 404))
            last = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
            text = answer(model, last)
            usage = {
                "prompt_tokens": len(last.split()),
                "completion_tokens": len(text.split()),
                "total_tokens": len(last.split()) + len(text.split()),
            }
            if not body.get("stream"):
                message = {"role": "assistant", "content": text}
                return self._reply(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "model": model,
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": usage,
                    },
                )
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            words = text.split(" ")
            pieces = [word if i == 0 else f" {word}" for i, word in enumerate(words)]
            with fake._lock:
                break_after, fake.break_next_stream_after = fake.break_next_stream_after, None
            for index, piece in enumerate(pieces):
                if index == break_after:
                    return self._drop()
                delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
                finish = "stop" if index == len(pieces) - 1 else None
                self._event({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            self._event({"choices": [], "usage": usage})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, event: dict[str, Any]) -> None:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()

    return Handler
