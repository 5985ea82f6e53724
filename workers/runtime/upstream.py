"""Models served by an OpenAI-compatible API (OpenAI, vLLM, TGI, another TigerPlatform...), proxied over HTTP.

Tools are passed through natively (``tools`` in the request, ``tool_calls`` in the answer). ``top_k`` and
``repetition_penalty`` are not OpenAI parameters; they are sent (as vLLM understands them) only when set.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

import httpx

from workers.runtime.errors import UpstreamError, UpstreamTimeoutError
from workers.runtime.specs import (
    ChatMessage,
    FinishReason,
    GenerationResult,
    ModelSpec,
    SamplingParams,
    StreamChunk,
    ToolCall,
    ToolSpec,
)

_FINISH_REASONS: dict[str | None, FinishReason] = {"length": "length", "tool_calls": "tool_calls"}


@cache
def _client(base_url: str, api_key: str, timeout_s: float) -> httpx.Client:
    # One pooled client per upstream, so requests reuse connections.
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout_s)


def _message(message: ChatMessage) -> dict[str, Any]:
    body: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        body["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.tool_call_id:
        body["tool_call_id"] = message.tool_call_id
    if message.name:
        body["name"] = message.name
    return body


def _payload(
    spec: ModelSpec,
    messages: Sequence[ChatMessage],
    params: SamplingParams,
    tools: Sequence[ToolSpec],
    stream: bool,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": spec.upstream_model or spec.name,
        "messages": [_message(m) for m in messages],
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": min(params.max_new_tokens or spec.max_new_tokens, spec.max_new_tokens),
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if params.stop:
        body["stop"] = list(params.stop)
    if params.seed is not None:
        body["seed"] = params.seed
    if params.top_k:
        body["top_k"] = params.top_k
    if params.repetition_penalty != 1.0:
        body["repetition_penalty"] = params.repetition_penalty
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            }
            for t in tools
        ]
    return body


def _send(spec: ModelSpec, body: dict[str, Any]) -> httpx.Response:
    client = _client(spec.base_url, spec.api_key, spec.timeout_s)
    request = client.build_request("POST", "chat/completions", json=body)
    try:
        response = client.send(request, stream=True)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{spec.base_url} did not answer within {spec.timeout_s}s") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(message=f"cannot reach {spec.base_url}: {exc}") from exc
    if response.status_code >= 400:
        try:
            detail = response.read().decode(errors="replace")[:500]
        except httpx.HTTPError:
            detail = ""
        finally:
            response.close()
        raise UpstreamError(status=response.status_code, message=detail or response.reason_phrase)
    return response


def _tool_call(data: dict[str, Any]) -> ToolCall:
    function = data["function"]
    return ToolCall(
        id=data.get("id") or f"call_{secrets.token_hex(12)}",
        name=function["name"],
        arguments=function.get("arguments") or "{}",
    )


def _result(text: str, calls: Sequence[ToolCall], finish: str | None, usage: dict[str, Any] | None) -> GenerationResult:
    usage = usage or {}
    return GenerationResult(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason="tool_calls" if calls else _FINISH_REASONS.get(finish, "stop"),
        tool_calls=tuple(calls),
    )


def generate(
    *,
    spec: ModelSpec,
    messages: Sequence[ChatMessage],
    params: SamplingParams,
    tools: Sequence[ToolSpec] = (),
) -> GenerationResult:
    """One chat completion; token counts are the upstream's ``usage`` (0 when it reports none)."""
    response = _send(spec, _payload(spec, messages, params, tools, stream=False))
    try:
        data = json.loads(response.read())
        choice = data["choices"][0]
        message = choice["message"]
        calls = [_tool_call(call) for call in message.get("tool_calls") or ()]
        return _result(message.get("content") or "", calls, choice.get("finish_reason"), data.get("usage"))
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{spec.base_url} stopped answering") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(message=f"connection to {spec.base_url} failed: {exc}") from exc
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise UpstreamError(status=response.status_code, message=f"invalid response: {exc!r}") from exc
    finally:
        response.close()


def stream(
    *,
    spec: ModelSpec,
    messages: Sequence[ChatMessage],
    params: SamplingParams,
    tools: Sequence[ToolSpec] = (),
) -> Iterator[StreamChunk]:
    """A streamed chat completion (server-sent events). Connection and HTTP-status errors are raised by this
    call; errors after the stream started are raised while iterating."""
    response = _send(spec, _payload(spec, messages, params, tools, stream=True))
    return _events(spec, response)


def _events(spec: ModelSpec, response: httpx.Response) -> Iterator[StreamChunk]:
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage: dict[str, Any] | None = None
    events = 0
    try:
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
            usage = event.get("usage") or usage
            for choice in event.get("choices") or ():
                finish = choice.get("finish_reason") or finish
                delta = choice.get("delta") or {}
                # Tool calls arrive in fragments keyed by index: id and name once, arguments piece by piece.
                for fragment in delta.get("tool_calls") or ():
                    call = calls.setdefault(fragment.get("index", 0), {"function": {"arguments": ""}})
                    call["id"] = fragment.get("id") or call.get("id")
                    function = fragment.get("function") or {}
                    call["function"]["name"] = function.get("name") or call["function"].get("name")
                    call["function"]["arguments"] += function.get("arguments") or ""
                if delta.get("content"):
                    text.append(delta["content"])
                    yield StreamChunk(delta=delta["content"])
        if not events:
            raise ValueError("no server-sent events in the response")
        result = _result("".join(text), [_tool_call(calls[i]) for i in sorted(calls)], finish, usage)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{spec.base_url} stopped streaming") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(message=f"stream from {spec.base_url} broke: {exc}") from exc
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise UpstreamError(status=response.status_code, message=f"invalid stream event: {exc!r}") from exc
    finally:
        response.close()
    yield StreamChunk(delta="", finished=True, result=result)
