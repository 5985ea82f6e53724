"""Models served by an OpenAI-compatible API (OpenAI, vLLM, TGI, another TigerPlatform...), proxied over HTTP.

Tools are passed through natively (``tools`` in the request, ``tool_calls`` in the answer). ``top_k`` and
``repetition_penalty`` are not OpenAI parameters; they are sent (as vLLM understands them) only when set.

A model may have several replicas (``base_url`` plus ``replica_urls``): each request tries them in the order
``replicas.replica_health`` gives, moving on when a connection fails before any of the answer reached the
caller (refused, reset, connect timeout); a lone replica is retried once. A stream is never retried once its
first chunk was handed out. A spec with ``adapter_path`` is a vLLM LoRA named ``upstream_model``: when a replica
does not know it (404, e.g. after a vLLM restart) it is loaded there and the request sent again.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

import httpx

from workers.runtime.errors import UpstreamError, UpstreamTimeoutError
from workers.runtime.replicas import replica_health
from workers.runtime.specs import (
    ChatMessage,
    FinishReason,
    GenerationResult,
    ModelSpec,
    Prompt,
    SamplingParams,
    StreamChunk,
    StructuredOutput,
    ToolCall,
    ToolSpec,
)

_FINISH_REASONS: dict[str | None, FinishReason] = {"length": "length", "tool_calls": "tool_calls"}
CONNECT_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 3.0
MIN_ATTEMPTS = 2  # so a lone replica gets one retry
RETRY_BACKOFF_S = 0.2  # before retrying the same replica
# Failures of the connection itself, before the upstream said anything: another attempt cannot duplicate output.
_CONNECTION_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
T = TypeVar("T")


class UpstreamUnavailableError(UpstreamError):
    """No replica of the upstream could be reached (maps to 502 ``upstream_error``)."""

    def __init__(self, *, message: str) -> None:
        super().__init__(message=message)


class AdapterLoadError(UpstreamError):
    """An upstream refused to load or unload a LoRA adapter."""


class _ConnectionFailed(Exception):
    """Internal: this replica's connection failed before any of the answer was handed out; try another."""


@cache
def _client(base_url: str, api_key: str, timeout_s: float) -> httpx.Client:
    # One pooled client per replica, so requests reuse connections.
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))
    return httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout)


def base_urls(*, spec: ModelSpec) -> list[str]:
    """The model's replicas: ``base_url`` then ``replica_urls``, without duplicates."""
    urls = (url.rstrip("/") for url in (spec.base_url, *spec.replica_urls) if url)
    return list(dict.fromkeys(urls))


def _admin_url(base_url: str, action: str) -> str:
    # vLLM's LoRA routes live at the server root's /v1, whatever prefix the chat base URL has.
    root = base_url.rstrip("/").removesuffix("/v1")
    return f"{root}/v1/{action}"


def probe(*, spec: ModelSpec, base_url: str) -> bool:
    """Whether the replica answers ``GET {base_url}/models`` (any status under 500: it is up, if picky)."""
    try:
        response = _client(base_url, spec.api_key, spec.timeout_s).get("models", timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return response.status_code < 500


def _failover(spec: ModelSpec, attempt: Callable[[str], T]) -> T:
    urls = replica_health.order(base_urls(spec=spec), probe=lambda url: probe(spec=spec, base_url=url))
    while len(urls) < MIN_ATTEMPTS:
        urls += urls[: MIN_ATTEMPTS - len(urls)]
    failures: list[str] = []
    for index, url in enumerate(urls):
        if index and url == urls[index - 1]:
            time.sleep(RETRY_BACKOFF_S)
        try:
            result = attempt(url)
        except _ConnectionFailed as exc:
            replica_health.mark_failed(url)
            failures.append(f"{url} ({exc})")
            continue
        except UpstreamError:
            replica_health.mark_up(url)  # it answered, if with an error
            raise
        replica_health.mark_up(url)
        return result
    replicas = len(dict.fromkeys(urls))
    raise UpstreamUnavailableError(
        message=f"could not connect to {'the' if replicas == 1 else f'any of the {replicas}'} upstream "
        f"replica{'s' if replicas > 1 else ''} of model {spec.name!r} after {len(urls)} attempts: "
        + "; ".join(failures)
    )


@contextmanager
def _request_errors(spec: ModelSpec, base_url: str, what: str) -> Iterator[None]:
    """httpx's errors while sending ``what``: a failed connection (another replica may be tried), a timeout,
    anything else."""
    try:
        yield
    except _CONNECTION_ERRORS as exc:
        raise _ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{base_url} did not answer {what} within {spec.timeout_s}s") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(message=f"{what} at {base_url} failed: {exc}") from exc


def _admin_post(spec: ModelSpec, base_url: str, action: str, body: dict[str, Any]) -> httpx.Response:
    with _request_errors(spec, base_url, action):
        return _client(base_url, spec.api_key, spec.timeout_s).post(_admin_url(base_url, action), json=body)


def _refusal(response: httpx.Response, what: str) -> AdapterLoadError:
    detail = response.text[:500]
    if response.status_code in (404, 405) and "No adapter found" not in detail:
        detail += (
            " (is the server a vLLM started with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True, "
            "and can it read the adapter's path? see VLLM_ADAPTER_ROOT)"
        )
    return AdapterLoadError(status=response.status_code, message=f"{what}: {detail}")


def _load_adapter(spec: ModelSpec, base_url: str) -> None:
    body = {"lora_name": spec.upstream_model, "lora_path": spec.adapter_path}
    response = _admin_post(spec, base_url, "load_lora_adapter", body)
    if response.status_code == 400 and "already been loaded" in response.text:
        return
    if response.status_code >= 400:
        raise _refusal(
            response, f"{base_url} refused to load LoRA adapter {spec.upstream_model!r} from {spec.adapter_path}"
        )


def load_adapter(*, spec: ModelSpec, base_url: str) -> None:
    """Load the spec's LoRA adapter (``adapter_path``, as the upstream sees it) into the vLLM at ``base_url``
    under the name ``upstream_model``; one it already has counts as loaded."""
    try:
        _load_adapter(spec, base_url)
    except _ConnectionFailed as exc:
        raise UpstreamUnavailableError(message=f"cannot reach {base_url}: {exc}") from None


def unload_adapter(*, spec: ModelSpec, base_url: str) -> None:
    """Unload the LoRA adapter named ``upstream_model`` from the vLLM at ``base_url``; one it does not have
    counts as unloaded."""
    try:
        response = _admin_post(spec, base_url, "unload_lora_adapter", {"lora_name": spec.upstream_model})
    except _ConnectionFailed as exc:
        raise UpstreamUnavailableError(message=f"cannot reach {base_url}: {exc}") from None
    if response.status_code == 404 and "cannot be found" in response.text:
        return
    if response.status_code >= 400:
        raise _refusal(response, f"{base_url} refused to unload LoRA adapter {spec.upstream_model!r}")


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
    prompt: Prompt | None = None,
) -> dict[str, Any]:
    """A ``chat/completions`` body, or a ``completions`` body when there is a raw ``prompt``."""
    body: dict[str, Any] = {
        "model": spec.upstream_model or spec.name,
        **({"messages": [_message(m) for m in messages]} if prompt is None else {"prompt": prompt}),
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
    if params.logprobs and prompt is None:
        body.update(logprobs=True, top_logprobs=params.top_logprobs)
    body.update(_structured_fields(params.structured, tools))
    return body


def _structured_fields(structured: StructuredOutput | None, tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The OpenAI request fields for an output constraint; vLLM and the like enforce them themselves."""
    if structured is None:
        return {}
    if structured.kind == "tool_calls":
        choice = {"type": "function", "function": {"name": tools[0].name}} if len(tools) == 1 else "required"
        return {"tool_choice": choice, "parallel_tool_calls": structured.parallel_tool_calls}
    if structured.kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    json_schema = {"name": structured.name or "output", "schema": structured.schema, "strict": True}
    return {"response_format": {"type": "json_schema", "json_schema": json_schema}}


def _route(body: dict[str, Any]) -> str:
    return "completions" if "prompt" in body else "chat/completions"


def _send(spec: ModelSpec, base_url: str, body: dict[str, Any]) -> httpx.Response:
    client = _client(base_url, spec.api_key, spec.timeout_s)
    request = client.build_request("POST", _route(body), json=body)
    with _request_errors(spec, base_url, _route(body)):
        response = client.send(request, stream=True)
    if response.status_code >= 400:
        try:
            detail = response.read().decode(errors="replace")[:500]
        except httpx.HTTPError:
            detail = ""
        finally:
            response.close()
        raise UpstreamError(status=response.status_code, message=detail or response.reason_phrase)
    return response


def _send_to_model(spec: ModelSpec, base_url: str, body: dict[str, Any]) -> httpx.Response:
    try:
        return _send(spec, base_url, body)
    except UpstreamError as exc:
        if exc.status != 404 or not spec.adapter_path:
            raise
    _load_adapter(spec, base_url)
    return _send(spec, base_url, body)


def _tool_call(data: dict[str, Any]) -> ToolCall:
    function = data["function"]
    return ToolCall(
        id=data.get("id") or f"call_{secrets.token_hex(12)}",
        name=function["name"],
        arguments=function.get("arguments") or "{}",
    )


def _result(
    text: str,
    calls: Sequence[ToolCall],
    finish: str | None,
    usage: dict[str, Any] | None,
    logprobs: Sequence[dict[str, Any]] | None = None,
) -> GenerationResult:
    usage = usage or {}
    return GenerationResult(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason="tool_calls" if calls else _FINISH_REASONS.get(finish, "stop"),
        tool_calls=tuple(calls),
        logprobs=tuple(logprobs) if logprobs is not None else None,
    )


def _logprobs(choice: dict[str, Any]) -> list[dict[str, Any]] | None:
    logprobs = choice.get("logprobs")
    return list(logprobs.get("content") or ()) if isinstance(logprobs, dict) else None


def generate(
    *,
    spec: ModelSpec,
    messages: Sequence[ChatMessage],
    params: SamplingParams,
    tools: Sequence[ToolSpec] = (),
    prompt: Prompt | None = None,
) -> GenerationResult:
    """One chat completion (a text completion of ``prompt`` when given); token counts are the upstream's
    ``usage`` (0 when it reports none)."""
    body = _payload(spec, messages, params, tools, stream=False, prompt=prompt)
    return _failover(spec, lambda url: _read_result(url, _send_to_model(spec, url, body)))


def _read_result(base_url: str, response: httpx.Response) -> GenerationResult:
    try:
        data = json.loads(response.read())
        choice = data["choices"][0]
        message = choice["message"] if "text" not in choice else {"content": choice["text"]}
        calls = [_tool_call(call) for call in message.get("tool_calls") or ()]
        return _result(
            message.get("content") or "", calls, choice.get("finish_reason"), data.get("usage"), _logprobs(choice)
        )
    except _CONNECTION_ERRORS as exc:
        raise _ConnectionFailed(f"{type(exc).__name__} while reading: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{base_url} stopped answering") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(message=f"connection to {base_url} failed: {exc}") from exc
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
    prompt: Prompt | None = None,
) -> Iterator[StreamChunk]:
    """A streamed chat (or text, with ``prompt``) completion (server-sent events). This call waits for the first
    chunk, so connection, HTTP-status and early stream errors are raised by it (after trying the other replicas);
    errors after the first chunk are raised while iterating, never retried."""
    body = _payload(spec, messages, params, tools, stream=True, prompt=prompt)

    def attempt(url: str) -> tuple[StreamChunk, Generator[StreamChunk]]:
        events = _events(url, _send_to_model(spec, url, body))
        try:
            return next(events), events
        except BaseException:
            events.close()
            raise

    first, rest = _failover(spec, attempt)
    return _chain(first, rest)


def _chain(first: StreamChunk, rest: Generator[StreamChunk]) -> Iterator[StreamChunk]:
    try:
        yield first
        yield from rest
    finally:
        rest.close()


def _events(base_url: str, response: httpx.Response) -> Generator[StreamChunk]:
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage: dict[str, Any] | None = None
    logprobs: list[dict[str, Any]] | None = None
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
                delta = choice.get("delta") or {"content": choice.get("text")}
                # Tool calls arrive in fragments keyed by index: id and name once, arguments piece by piece.
                for fragment in delta.get("tool_calls") or ():
                    call = calls.setdefault(fragment.get("index", 0), {"function": {"arguments": ""}})
                    call["id"] = fragment.get("id") or call.get("id")
                    function = fragment.get("function") or {}
                    call["function"]["name"] = function.get("name") or call["function"].get("name")
                    call["function"]["arguments"] += function.get("arguments") or ""
                scored = _logprobs(choice)
                if scored is not None:
                    logprobs = (logprobs or []) + scored
                if delta.get("content") or scored:
                    text.append(delta.get("content") or "")
                    yield StreamChunk(
                        delta=delta.get("content") or "", logprobs=tuple(scored) if scored is not None else None
                    )
        if not events:
            raise ValueError("no server-sent events in the response")
        result = _result("".join(text), [_tool_call(calls[i]) for i in sorted(calls)], finish, usage, logprobs)
    except _CONNECTION_ERRORS as exc:
        if not text:
            raise _ConnectionFailed(f"{type(exc).__name__} before the first chunk: {exc}") from exc
        raise UpstreamError(message=f"stream from {base_url} broke: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{base_url} stopped streaming") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(message=f"stream from {base_url} broke: {exc}") from exc
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise UpstreamError(status=response.status_code, message=f"invalid stream event: {exc!r}") from exc
    finally:
        response.close()
    yield StreamChunk(delta="", finished=True, result=result)
