"""The OpenAI ``chat/completions`` and ``completions`` wire format: request bodies from the runtime's specs, and
answers (whole, or server-sent event by event) back into them.

Tools are passed through natively (``tools`` in the request, ``tool_calls`` in the answer). ``top_k`` and
``repetition_penalty`` are not OpenAI parameters; they are sent (as vLLM understands them) only when set.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from typing import Any

from workers.runtime.specs import (
    ChatMessage,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    StreamChunk,
    StructuredOutput,
    ToolCall,
    ToolSpec,
)

_FINISH_REASONS: dict[str | None, FinishReason] = {"length": "length", "tool_calls": "tool_calls"}


def request_body(*, request: GenerationRequest, stream: bool) -> dict[str, Any]:
    """A ``chat/completions`` body, or a ``completions`` body when there is a raw ``prompt``."""
    spec, params, tools, prompt = request.spec, request.params, request.tools, request.prompt
    body: dict[str, Any] = {
        "model": spec.upstream_model or spec.name,
        **({"messages": [_message(m) for m in request.messages]} if prompt is None else {"prompt": prompt}),
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


def route(body: dict[str, Any]) -> str:
    return "completions" if "prompt" in body else "chat/completions"


def parse_result(data: dict[str, Any]) -> GenerationResult:
    """A whole (not streamed) answer; token counts are its ``usage`` (0 when it reports none)."""
    choice = data["choices"][0]
    message = choice["message"] if "text" not in choice else {"content": choice["text"]}
    calls = [_tool_call(call) for call in message.get("tool_calls") or ()]
    return _result(
        message.get("content") or "", calls, choice.get("finish_reason"), data.get("usage"), _logprobs(choice)
    )


class StreamedAnswer:
    """A streamed answer, put together one server-sent event at a time."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._logprobs: list[dict[str, Any]] | None = None

    def feed(self, event: dict[str, Any]) -> Iterator[StreamChunk]:
        """The chunks ``event`` adds to the answer."""
        self._usage = event.get("usage") or self._usage
        for choice in event.get("choices") or ():
            self._finish = choice.get("finish_reason") or self._finish
            delta = choice.get("delta") or {"content": choice.get("text")}
            # Tool calls arrive in fragments keyed by index: id and name once, arguments piece by piece.
            for fragment in delta.get("tool_calls") or ():
                call = self._calls.setdefault(fragment.get("index", 0), {"function": {"arguments": ""}})
                call["id"] = fragment.get("id") or call.get("id")
                function = fragment.get("function") or {}
                call["function"]["name"] = function.get("name") or call["function"].get("name")
                call["function"]["arguments"] += function.get("arguments") or ""
            scored = _logprobs(choice)
            if scored is not None:
                self._logprobs = (self._logprobs or []) + scored
            if delta.get("content") or scored:
                self.text.append(delta.get("content") or "")
                yield StreamChunk(
                    delta=delta.get("content") or "", logprobs=tuple(scored) if scored is not None else None
                )

    def result(self) -> GenerationResult:
        calls = [_tool_call(self._calls[i]) for i in sorted(self._calls)]
        return _result("".join(self.text), calls, self._finish, self._usage, self._logprobs)


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
