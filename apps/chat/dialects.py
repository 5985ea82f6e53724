"""The two chat dialects of ``POST /v1/chat/completions``: parse a body into one ``ChatRequest``, and render a
result (or a stream of chunks) back in the caller's dialect."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from apps.chat import protocol
from apps.chat.serializers import OpenAIChatSerializer, TigerBotChatSerializer
from apps.core.sse import DONE
from workers.errors import InvalidRequest
from workers.runtime.specs import (
    ChatMessage,
    FinishReason,
    GenerationResult,
    ModelSpec,
    Role,
    SamplingParams,
    StreamChunk,
    StructuredOutput,
    ToolCall,
    ToolSpec,
)

Dialect = Literal["openai", "tigerbot"]


@dataclass
class ChatRequest:
    dialect: Dialect
    model: str | None
    messages: list[ChatMessage]
    sampling: dict[str, Any]
    max_tokens: int | None
    max_tokens_param: str
    stream: bool
    include_usage: bool = False
    tools: list[ToolSpec] = field(default_factory=list)
    n: int = 1
    internet: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def params_for(self, spec: ModelSpec) -> SamplingParams:
        if self.max_tokens is not None and self.max_tokens > spec.max_new_tokens:
            raise InvalidRequest(
                f"{self.max_tokens_param} may be at most {spec.max_new_tokens} for {spec.name}.",
                param=self.max_tokens_param,
            )
        return SamplingParams(**self.sampling, max_new_tokens=self.max_tokens)


def detect_dialect(body: Any) -> Dialect:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_request")
    if "messages" in body:
        return "openai"
    if "query" in body:
        return "tigerbot"
    raise InvalidRequest("Send `messages` (OpenAI dialect) or `query` (TigerBot dialect).", param="messages")


def sampling_from(data: dict[str, Any], *, default_temperature: float) -> dict[str, Any]:
    sampling: dict[str, Any] = {"temperature": data.get("temperature", default_temperature)}
    for name in ("top_p", "top_k", "repetition_penalty", "seed"):
        if data.get(name) is not None:
            sampling[name] = data[name]
    sampling["stop"] = tuple(data.get("stop") or ())
    return sampling


def _openai_message(data: dict[str, Any]) -> ChatMessage:
    calls = tuple(
        ToolCall(id=c["id"], name=c["function"]["name"], arguments=c["function"]["arguments"])
        for c in data.get("tool_calls", ())
    )
    role: Role = "system" if data["role"] == "developer" else data["role"]
    return ChatMessage(
        role=role,
        content=data.get("content") or "",
        tool_calls=calls,
        tool_call_id=data.get("tool_call_id", ""),
        name=data.get("name", ""),
    )


# Our extension of the OpenAI dialect: `search: true | {top_k, providers}` for search-augmented answers.
OPENAI_EXTENSION_FIELDS = frozenset({"search"})


def _structured(data: dict[str, Any], tools: list[ToolSpec]) -> StructuredOutput | None:
    """The output constraint a request asks for: a required tool call wins over a response format."""
    choice = data.get("tool_choice", "auto")
    if tools and (choice == "required" or isinstance(choice, dict)):
        return StructuredOutput(kind="tool_calls", parallel_tool_calls=data["parallel_tool_calls"])
    response_format = data.get("response_format") or {"type": "text"}
    if response_format["type"] == "json_object":
        return StructuredOutput(kind="json_object")
    if response_format["type"] == "json_schema":
        json_schema = response_format["json_schema"]
        return StructuredOutput(kind="json_schema", schema=json_schema["schema"], name=json_schema["name"])
    return None


def parse_openai(body: dict[str, Any], *, extra_fields: frozenset[str] = OPENAI_EXTENSION_FIELDS) -> ChatRequest:
    serializer = OpenAIChatSerializer(data=body, context={"extra": extra_fields})
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    tools = [
        ToolSpec(
            name=t["function"]["name"], description=t["function"]["description"], parameters=t["function"]["parameters"]
        )
        for t in data.get("tools", ())
    ]
    choice = data.get("tool_choice", "auto")
    if choice == "none":
        tools = []
    elif isinstance(choice, dict):
        wanted = choice["function"].get("name")
        tools = [t for t in tools if t.name == wanted]
        if not tools:
            raise InvalidRequest(f"tool_choice names {wanted!r}, which is not in tools.", param="tool_choice")
    sampling = sampling_from(data, default_temperature=1.0)
    sampling["structured"] = _structured(data, tools)
    if data.get("logprobs"):
        sampling.update(logprobs=True, top_logprobs=data.get("top_logprobs") or 0)
    max_param = "max_completion_tokens" if data.get("max_completion_tokens") else "max_tokens"
    return ChatRequest(
        dialect="openai",
        model=data["model"],
        messages=[_openai_message(m) for m in data["messages"]],
        sampling=sampling,
        max_tokens=data.get(max_param),
        max_tokens_param=max_param,
        stream=data["stream"],
        include_usage=bool((data.get("stream_options") or {}).get("include_usage")),
        tools=tools,
        n=data["n"],
        internet=bool(body.get("search")),
        extras={name: body[name] for name in extra_fields if name in body},
    )


def parse_tigerbot(body: dict[str, Any]) -> ChatRequest:
    serializer = TigerBotChatSerializer(data=body)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    messages = [ChatMessage(role="system", content=data["system"])] if data.get("system") else []
    for turn in data["session"]:
        messages += [
            ChatMessage(role="user", content=turn["human"]),
            ChatMessage(role="assistant", content=turn["assistant"]),
        ]
    messages.append(ChatMessage(role="user", content=data["query"]))
    max_param = "max_new_tokens" if data.get("max_new_tokens") else "max_tokens"
    return ChatRequest(
        dialect="tigerbot",
        model=data.get("model"),
        messages=messages,
        sampling=sampling_from(data, default_temperature=SamplingParams.temperature),
        max_tokens=data.get(max_param),
        max_tokens_param=max_param,
        stream=data["stream"],
        internet=data["internet"],
    )


# --- OpenAI rendering ----------------------------------------------------------------------------------


def _tool_calls(calls: tuple[ToolCall, ...]) -> list[protocol.ToolCall]:
    return [
        protocol.ToolCall(id=c.id, type="function", function=protocol.Function(name=c.name, arguments=c.arguments))
        for c in calls
    ]


def _usage(result: GenerationResult) -> protocol.Usage:
    return protocol.Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )


def _token_logprob(entry: dict[str, Any]) -> protocol.ChatCompletionTokenLogprob:
    top = [protocol.TopLogprob(**t) for t in entry.get("top_logprobs", ())]
    return protocol.ChatCompletionTokenLogprob(**{**entry, "top_logprobs": top})


def _choice_logprobs(logprobs: tuple[dict[str, Any], ...] | None) -> protocol.ChoiceLogprobs | None:
    if logprobs is None:
        return None
    return protocol.ChoiceLogprobs(content=[_token_logprob(e) for e in logprobs], refusal=None)


def _assistant_message(
    result: GenerationResult, annotations: list[dict[str, Any]] | None
) -> protocol.ChatCompletionMessage:
    fields: dict[str, Any] = {}
    if result.tool_calls:
        fields["tool_calls"] = _tool_calls(result.tool_calls)
    if annotations is not None:
        fields["annotations"] = [protocol.Annotation.model_validate(a) for a in annotations]
    return protocol.ChatCompletionMessage(
        role="assistant",
        content=result.text if not result.tool_calls else (result.text or None),
        refusal=None,
        **fields,
    )


def openai_completion(
    *,
    model: str,
    results: list[GenerationResult],
    sources: list[dict[str, Any]] | None = None,
    annotations: list[list[dict[str, Any]]] | None = None,
    search_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A chat.completion with one choice per result (``n``), ``annotations`` (when given) one list per result;
    the prompt is counted once. ``search_fields`` follow ``sources`` in a search-augmented answer."""
    choices = [
        protocol.ChatCompletionChoice(
            index=index,
            message=_assistant_message(result, annotations[index] if annotations else None),
            finish_reason=result.finish_reason,
            logprobs=_choice_logprobs(result.logprobs),
        )
        for index, result in enumerate(results)
    ]
    extra = {"sources": sources, **(search_fields or {})} if sources is not None else search_fields or {}
    return protocol.ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        object="chat.completion",
        created=int(time.time()),
        model=model,
        choices=choices,
        usage=_usage(combined_usage(results)),
        **extra,
    ).dump()


def combined_usage(results: list[GenerationResult]) -> GenerationResult:
    """One result whose token counts are those of all ``results`` together (the prompt counted once)."""
    return replace(results[0], completion_tokens=sum(r.completion_tokens for r in results))


def recording(chunks: Iterator[StreamChunk], finished: list[GenerationResult]) -> Iterator[StreamChunk]:
    """``chunks`` unchanged; each final result is appended to ``finished`` as it passes (for usage records)."""
    for chunk in chunks:
        if chunk.finished and chunk.result is not None:
            finished.append(chunk.result)
        yield chunk


def interleave(choices: list[Iterator[StreamChunk]]) -> Iterator[tuple[int, StreamChunk]]:
    """(choice index, chunk) of every choice, one chunk of each in turn: the choices generate side by side in the
    engine, so taking them in turn never waits long on any. Closing this closes every choice (a client that
    left stops all their generation, not just the current one)."""
    active = dict(enumerate(choices))
    try:
        while active:
            for index, chunks in list(active.items()):
                chunk = next(chunks, None)
                if chunk is None or chunk.finished:
                    del active[index]
                if chunk is not None:
                    yield index, chunk
    finally:
        for chunks in choices:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()


def stream_chunk_base(*, id_prefix: str, object_type: str, model: str, include_usage: bool) -> dict[str, Any]:
    """The fields every chunk of one OpenAI stream repeats: one id, type, creation time and model; and, when the
    caller asked for usage, ``usage: null`` until the extra last chunk that carries it."""
    base: dict[str, Any] = {
        "id": f"{id_prefix}-{uuid.uuid4().hex}",
        "object": object_type,
        "created": int(time.time()),
        "model": model,
    }
    if include_usage:
        base["usage"] = None
    return base


def openai_stream(
    *, model: str, choices: list[Iterator[StreamChunk]], include_usage: bool, head: dict[str, Any] | None = None
) -> Iterator[Any]:
    """chat.completion.chunk events of every choice, interleaved."""
    base = stream_chunk_base(
        id_prefix="chatcmpl", object_type="chat.completion.chunk", model=model, include_usage=include_usage
    )

    def event(
        index: int,
        delta: protocol.Delta,
        finish: FinishReason | None = None,
        logprobs: tuple[dict[str, Any], ...] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        choice = protocol.ChunkChoice(
            index=index, delta=delta, finish_reason=finish, logprobs=_choice_logprobs(logprobs)
        )
        return protocol.ChatCompletionChunk(**base, choices=[choice], **extra).dump()

    for index in range(len(choices)):
        yield event(index, protocol.Delta(role="assistant", content=""), **(head or {}) if index == 0 else {})
    results: list[GenerationResult] = []
    for index, chunk in interleave(choices):
        if chunk.delta or chunk.logprobs:
            yield event(index, protocol.Delta(content=chunk.delta), logprobs=chunk.logprobs)
        if chunk.finished and chunk.result is not None:
            result = chunk.result
            results.append(result)
            if result.tool_calls:
                calls = [
                    protocol.ChoiceDeltaToolCall(
                        index=i,
                        id=call.id,
                        type="function",
                        function=protocol.ChoiceDeltaFunction(name=call.name, arguments=call.arguments),
                    )
                    for i, call in enumerate(result.tool_calls)
                ]
                yield event(index, protocol.Delta(tool_calls=calls))
            yield event(index, protocol.Delta(), result.finish_reason)
    if include_usage and results:
        yield protocol.ChatCompletionChunk(**{**base, "usage": _usage(combined_usage(results))}, choices=[]).dump()
    yield DONE


# --- TigerBot rendering --------------------------------------------------------------------------------


def tigerbot_completion(
    *,
    result: GenerationResult,
    sources: list[dict[str, Any]] | None = None,
    search_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    extra = {"sources": sources, **(search_fields or {})} if sources is not None else search_fields or {}
    return protocol.TigerBotCompletion(
        result=result.text,
        input_tokens=result.prompt_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
        **extra,
    ).dump()


def tigerbot_stream(*, chunks: Iterator[StreamChunk], head: dict[str, Any] | None = None) -> Iterator[Any]:
    if head:
        yield protocol.TigerBotChunk(finished=False, new_text="", **head).dump()
    for chunk in chunks:
        if chunk.delta:
            yield protocol.TigerBotChunk(finished=False, new_text=chunk.delta).dump()
        if chunk.finished and chunk.result is not None:
            result = chunk.result
            yield protocol.TigerBotFinal(
                finished=True,
                result=result.text,
                input_tokens=result.prompt_tokens,
                total_tokens=result.prompt_tokens + result.completion_tokens,
            ).dump()
