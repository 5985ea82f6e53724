"""The runtime's front door: one call to generate or stream a chat answer, whatever serves the model."""

from __future__ import annotations

import atexit
from collections.abc import Generator, Sequence
from dataclasses import replace

from workers.runtime import upstream
from workers.runtime.batching import EngineLimits
from workers.runtime.local import LocalRuntime
from workers.runtime.specs import ChunkStream, ClosingStream, GenerationRequest, GenerationResult, StreamChunk, ToolSpec
from workers.runtime.streaming import sendable_length
from workers.runtime.tools import TOOL_CALL_OPEN, parse_tool_calls

local_runtime = LocalRuntime(limits=EngineLimits.from_env())
"""Models loaded by this process (each loaded once, shared by all requests and adapters)."""
atexit.register(lambda: local_runtime.close())


def _with_tool_calls(result: GenerationResult, tools: Sequence[ToolSpec]) -> GenerationResult:
    content, calls = parse_tool_calls(text=result.text, tools=tools)
    if not calls:
        return result
    return replace(result, text=content, tool_calls=tuple(calls), finish_reason="tool_calls")


def _hide_tool_calls(chunks: ChunkStream, tools: Sequence[ToolSpec]) -> ChunkStream:
    """Stream the text before the first ``<tool_call>``; hold the rest until the end shows whether it parses
    as tool calls (then it goes into ``result.tool_calls``) or is plain text after all (then it is sent)."""
    return ClosingStream(_held_tool_calls(chunks, tools), on_unstarted_close=chunks.close)


def _held_tool_calls(chunks: ChunkStream, tools: Sequence[ToolSpec]) -> Generator[StreamChunk, None, None]:
    raw, sent = "", 0
    try:
        for chunk in chunks:
            if chunk.finished:
                if chunk.result is None:
                    raise RuntimeError("a finished chunk carries no result")
                result = _with_tool_calls(chunk.result, tools)
                yield StreamChunk(delta="" if result.tool_calls else result.text[sent:], finished=True, result=result)
                return
            raw += chunk.delta
            tag = raw.find(TOOL_CALL_OPEN)
            boundary = tag if tag >= 0 else sendable_length(text=raw, markers=(TOOL_CALL_OPEN,))
            if boundary > sent:
                yield StreamChunk(delta=raw[sent:boundary])
                sent = boundary
    finally:
        chunks.close()  # a for loop left early does not close what it iterates: the answer must stop here too


def generate(*, request: GenerationRequest) -> GenerationResult:
    """The model's answer to the request's messages (or its continuation of a raw prompt); with tools it may be
    tool calls (finish_reason 'tool_calls'). A local model's paths must be local to this host (the runtime knows
    no shared storage: its caller fetches weights kept there first)."""
    if request.spec.backend == "openai-upstream":
        return upstream.generate(request=request)
    result = local_runtime.generate(request=request)
    return _with_tool_calls(result, request.tools) if request.tools else result


def stream(*, request: GenerationRequest) -> ChunkStream:
    """Like ``generate``, chunk by chunk; the final chunk (``finished=True``) carries the full result.

    Load, prompt and connection errors are raised by this call, before the first chunk.
    """
    if request.spec.backend == "openai-upstream":
        return upstream.stream(request=request)
    chunks = local_runtime.stream(request=request)
    return _hide_tool_calls(chunks, request.tools) if request.tools else chunks
