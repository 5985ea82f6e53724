"""Serving tasks (queue ``serve``). A serving worker runs them in a pool of threads (``-P threads``) that all
feed the process's one continuous-batching engine per model, loaded once and kept."""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from apps.chat import streams
from apps.chat.runtime_errors import RUNTIME_ERRORS, error_to_dict
from workers.runtime import engine
from workers.runtime.specs import ChatMessage, ModelSpec, SamplingParams, ToolSpec


def _inputs(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "spec": ModelSpec.from_dict(payload["spec"]),
        "messages": [ChatMessage.from_dict(m) for m in payload["messages"]],
        "params": SamplingParams.from_dict(payload["params"]),
        "tools": [ToolSpec.from_dict(t) for t in payload["tools"]] or None,
        "prompt": payload.get("prompt"),
    }


@shared_task(name="chat.generate")
def generate_task(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"result": engine.generate(**_inputs(payload)).to_dict()}
    except RUNTIME_ERRORS as exc:
        return {"error": error_to_dict(exc)}


# How often a streaming task asks whether its reader went away; a cancelled request frees its engine slot.
CANCEL_POLL_S = 0.5


@shared_task(name="chat.stream", ignore_result=True)
def stream_task(payload: dict[str, Any], request_id: str) -> None:
    if streams.is_cancelled(request_id=request_id):
        return
    try:
        chunks = engine.stream(**_inputs(payload))
        polled = time.monotonic()
        for chunk in chunks:
            streams.publish(request_id=request_id, event={"chunk": chunk.to_dict()})
            if time.monotonic() - polled > CANCEL_POLL_S:
                polled = time.monotonic()
                if streams.is_cancelled(request_id=request_id):
                    chunks.close()
                    return
    except RUNTIME_ERRORS as exc:
        streams.publish(request_id=request_id, event={"error": error_to_dict(exc)})
