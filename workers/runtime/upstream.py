"""Models served by an OpenAI-compatible API (OpenAI, vLLM, TGI, another TigerPlatform...), proxied over HTTP:
the wire format is ``upstream_protocol``'s, the replicas and failover ``upstream_http``'s.

A stream is never retried once its first chunk was handed out. A spec with ``adapter_path`` is a vLLM LoRA named
``upstream_model``: when a replica does not know it (404, e.g. after a vLLM restart) it is loaded there and the
request sent again.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import httpx

from workers.runtime.errors import UpstreamError
from workers.runtime.specs import GenerationRequest, GenerationResult, ModelSpec, StreamChunk
from workers.runtime.upstream_adapters import load_adapter_or_fail
from workers.runtime.upstream_http import answer_errors, failover, post
from workers.runtime.upstream_protocol import StreamedAnswer, parse_result, request_body, route


def generate(*, request: GenerationRequest) -> GenerationResult:
    """One chat completion (a text completion of ``prompt`` when given); token counts are the upstream's
    ``usage`` (0 when it reports none)."""
    body = request_body(request=request, stream=False)
    return failover(request.spec, lambda url: _read_result(url, _send_to_model(request.spec, url, body)))


def stream(*, request: GenerationRequest) -> Generator[StreamChunk]:
    """A streamed chat (or text, with ``prompt``) completion (server-sent events). This call waits for the first
    chunk, so connection, HTTP-status and early stream errors are raised by it (after trying the other replicas);
    errors after the first chunk are raised while iterating, never retried."""
    body = request_body(request=request, stream=True)

    def attempt(url: str) -> tuple[StreamChunk, Generator[StreamChunk]]:
        events = _events(url, _send_to_model(request.spec, url, body))
        try:
            return next(events), events
        except BaseException:
            events.close()
            raise

    first, rest = failover(request.spec, attempt)
    return _chain(first, rest)


def _send_to_model(spec: ModelSpec, base_url: str, body: dict[str, Any]) -> httpx.Response:
    try:
        return post(spec, base_url, route(body), body)
    except UpstreamError as exc:
        if exc.status != 404 or not spec.adapter_path:
            raise
    load_adapter_or_fail(spec=spec, base_url=base_url)
    return post(spec, base_url, route(body), body)


def _read_result(base_url: str, response: httpx.Response) -> GenerationResult:
    with answer_errors(base_url=base_url, response=response, streaming=False):
        return parse_result(json.loads(response.read()))


def _chain(first: StreamChunk, rest: Generator[StreamChunk]) -> Generator[StreamChunk]:
    try:
        yield first
        yield from rest
    finally:
        rest.close()


def _events(base_url: str, response: httpx.Response) -> Generator[StreamChunk]:
    answer = StreamedAnswer()
    events = 0
    with answer_errors(base_url=base_url, response=response, streaming=True, started=lambda: bool(answer.text)):
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            events += 1
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                break
            event = json.loads(data)
            if "error" in event:
                raise UpstreamError(status=response.status_code, message=json.dumps(event["error"])[:500])
            yield from answer.feed(event)
        if not events:
            raise ValueError("no server-sent events in the response")
        result = answer.result()
    yield StreamChunk(delta="", finished=True, result=result)
