"""The OpenAI-compatible upstream, against a real local HTTP server that speaks the chat-completions shape."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.chat.conftest import WEATHER_CALL, WEATHER_QUESTION, WEATHER_RESULT, WEATHER_TOOL
from workers.runtime import engine
from workers.runtime.errors import UpstreamError, UpstreamTimeoutError
from workers.runtime.specs import ChatMessage, GenerationRequest, ModelSpec, SamplingParams

HELLO = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Hi")]


def hello(spec: ModelSpec) -> GenerationRequest:
    return GenerationRequest(spec=spec, messages=HELLO, params=SamplingParams())


CALL = {"id": "call_up", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish_reason}], "usage": USAGE}


def stream_events(model: str) -> list[dict[str, Any]]:
    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    if model == "tool":
        arguments = CALL["function"]["arguments"]
        return [
            choice({"role": "assistant", "tool_calls": [{"index": 0, **CALL, "function": {"name": "get_weather"}}]}),
            choice({"tool_calls": [{"index": 0, "function": {"arguments": arguments[:5]}}]}),
            choice({"tool_calls": [{"index": 0, "function": {"arguments": arguments[5:]}}]}, "tool_calls"),
            {"choices": [], "usage": USAGE},
        ]
    return [
        choice({"role": "assistant", "content": ""}),
        choice({"content": "Hello"}),
        choice({"content": " from upstream"}, "length"),
        {"choices": [], "usage": USAGE},
    ]


class Handler(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    hung_up: list[str] = []  # the models whose streams the client closed before their end

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Handler.requests.append((self.path, dict(self.headers), body))
        model = body["model"]
        if model == "slow":
            time.sleep(1.5)
        if model == "broken":
            return self.reply(503, b'{"error": {"message": "overloaded"}}')
        if model == "garbage":
            return self.reply(200, b"<html>not json</html>")
        if model == "long":
            return self.stream_slowly(model)
        if body["stream"]:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event in stream_events(model):
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            return None
        if model == "tool":
            return self.reply(
                200, json.dumps(completion({"content": None, "tool_calls": [CALL]}, "tool_calls")).encode()
            )
        message = {"role": "assistant", "content": "Hello from upstream"}
        return self.reply(200, json.dumps(completion(message, "stop")).encode())

    def stream_slowly(self, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for _ in range(60):
                event = {"choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:  # the client hung up
            Handler.hung_up.append(model)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out on purpose leave broken pipes behind


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def upstream_spec(base_url: str, model: str = "ok", **overrides: Any) -> ModelSpec:
    options = {"name": "up", "family": "hf-template", "backend": "openai-upstream", "base_url": base_url}
    return ModelSpec(**{**options, "upstream_model": model, "api_key": "sk-test", **overrides})


def test_generate_sends_the_openai_request_and_reads_the_answer(base_url: str) -> None:
    params = SamplingParams(temperature=0.2, top_k=7, stop=("END",), seed=3, max_new_tokens=9)
    result = engine.generate(request=GenerationRequest(spec=upstream_spec(base_url), messages=HELLO, params=params))
    assert (result.text, result.finish_reason, result.prompt_tokens, result.completion_tokens) == (
        "Hello from upstream",
        "stop",
        5,
        3,
    )
    path, headers, body = Handler.requests[-1]
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body == {
        "model": "ok",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "temperature": 0.2,
        "top_p": 1.0,
        "max_tokens": 9,
        "stream": False,
        "stop": ["END"],
        "seed": 3,
        "top_k": 7,
    }


def test_stream_passes_deltas_through(base_url: str) -> None:
    chunks = list(engine.stream(request=hello(upstream_spec(base_url))))
    assert [c.delta for c in chunks] == ["Hello", " from upstream", ""]
    assert chunks[-1].finished and chunks[-1].result is not None
    assert (chunks[-1].result.text, chunks[-1].result.finish_reason) == ("Hello from upstream", "length")
    assert chunks[-1].result.completion_tokens == 3
    assert Handler.requests[-1][2]["stream_options"] == {"include_usage": True}


def test_a_stream_closed_before_its_first_chunk_hangs_up_on_the_upstream(base_url: str) -> None:
    Handler.hung_up.clear()
    chunks = engine.stream(request=hello(upstream_spec(base_url, "long")))  # the upstream has begun to answer
    chunks.close()  # what a client leaving before the first token comes to
    deadline = time.monotonic() + 2  # the whole answer takes 3 s
    while not Handler.hung_up and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Handler.hung_up == ["long"]


def test_tools_and_tool_calls_pass_through_natively(base_url: str) -> None:
    spec = upstream_spec(base_url, "tool")
    history = [WEATHER_QUESTION, WEATHER_CALL, WEATHER_RESULT]
    result = engine.generate(
        request=GenerationRequest(spec=spec, messages=history, params=SamplingParams(), tools=[WEATHER_TOOL])
    )
    assert result.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [("call_up", "get_weather", '{"city": "Paris"}')]
    sent = Handler.requests[-1][2]
    assert sent["tools"] == [{"type": "function", "function": WEATHER_TOOL.to_dict()}]
    assert sent["messages"][1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert sent["messages"][2] == {"role": "tool", "content": '{"temperature": 21}', "tool_call_id": "call_1"}
    final = list(
        engine.stream(
            request=GenerationRequest(spec=spec, messages=history, params=SamplingParams(), tools=[WEATHER_TOOL])
        )
    )[-1]
    assert final.result is not None
    assert final.result.tool_calls == result.tool_calls


def test_error_status_and_invalid_responses_are_upstream_errors(base_url: str) -> None:
    with pytest.raises(UpstreamError) as error:
        engine.generate(request=hello(upstream_spec(base_url, "broken")))
    assert error.value.status == 503
    assert "overloaded" in error.value.message
    with pytest.raises(UpstreamError):
        engine.stream(request=hello(upstream_spec(base_url, "broken")))
    with pytest.raises(UpstreamError) as error:
        engine.generate(request=hello(upstream_spec(base_url, "garbage")))
    assert error.value.status == 200
    with pytest.raises(UpstreamError):
        list(engine.stream(request=hello(upstream_spec(base_url, "garbage"))))


def test_unreachable_upstream_is_an_upstream_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamError) as error:
        engine.generate(request=hello(upstream_spec(f"http://127.0.0.1:{port}/v1")))
    assert error.value.status is None


def test_slow_upstream_times_out(base_url: str) -> None:
    spec = upstream_spec(base_url, "slow", timeout_s=0.3)
    with pytest.raises(UpstreamTimeoutError):
        engine.generate(request=hello(spec))
    with pytest.raises(UpstreamTimeoutError):
        engine.stream(request=hello(spec))
