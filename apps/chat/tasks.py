"""Serving tasks (queue ``serve``). A serving worker runs them in a pool of threads (``-P threads``) that all
feed the process's one continuous-batching engine per model, loaded once and kept."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from celery import shared_task

from apps.chat import streams
from apps.chat.runtime_errors import RUNTIME_ERRORS, error_to_dict
from apps.chat.selectors import local_model_spec
from apps.core.errors import OUTAGES
from workers.runtime import engine
from workers.runtime.specs import ChunkStream, GenerationRequest, GenerationResult

logger = logging.getLogger(__name__)


def _request(payload: dict[str, Any]) -> GenerationRequest:
    """The request a producer sent (``GenerationRequest.to_dict``), with the model's paths local to this host."""
    request = GenerationRequest.from_dict(payload)
    return replace(request, spec=local_model_spec(request.spec))


def _log_served(
    *,
    payload: dict[str, Any],
    started: float,
    stream: bool,
    result: GenerationResult | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    """One line per served request on the serving worker (the request id comes from the task's headers)."""
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    fields: dict[str, Any] = {
        "event": "served",
        "model": payload["spec"]["name"],
        "stream": stream,
        "duration_ms": duration_ms,
    }
    if result is not None:
        fields.update(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            finish_reason=result.finish_reason,
        )
    if error is not None:
        fields["error_code"] = error["code"]
    logger.info(
        "served %s in %.1fms%s", fields["model"], duration_ms, f" ({error['code']})" if error else "", extra=fields
    )


@shared_task(name="chat.generate")
def generate_task(payload: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        result = engine.generate(request=_request(payload))
    except RUNTIME_ERRORS as exc:
        error = error_to_dict(exc)
        _log_served(payload=payload, started=started, stream=False, error=error)
        return {"error": error}
    _log_served(payload=payload, started=started, stream=False, result=result)
    return {"result": result.to_dict()}


# How often a streaming task asks whether its reader went away; a cancelled request frees its engine slot.
CANCEL_POLL_S = 0.5


@shared_task(name="chat.stream", ignore_result=True)
def stream_task(payload: dict[str, Any], request_id: str) -> None:
    if streams.is_cancelled(request_id=request_id):
        return
    started = time.monotonic()
    chunks: ChunkStream | None = None
    try:
        chunks = engine.stream(request=_request(payload))
        polled = time.monotonic()
        for chunk in chunks:
            streams.publish(request_id=request_id, event={"chunk": chunk.to_dict()})
            if chunk.result is not None:
                _log_served(payload=payload, started=started, stream=True, result=chunk.result)
            if time.monotonic() - polled > CANCEL_POLL_S:
                polled = time.monotonic()
                if streams.is_cancelled(request_id=request_id):
                    return
    except RUNTIME_ERRORS as exc:
        error = error_to_dict(exc)
        _log_served(payload=payload, started=started, stream=True, error=error)
        streams.publish(request_id=request_id, event={"error": error})
    except OUTAGES as exc:
        # The channel is gone, so nobody can read the rest: stop generating it (an outage, not a bug in the task).
        logger.warning("stream %s abandoned, its channel is unavailable: %s: %s", request_id, type(exc).__name__, exc)
    finally:
        if chunks is not None:
            chunks.close()  # frees the engine slot at once (a no-op once the answer is whole)
