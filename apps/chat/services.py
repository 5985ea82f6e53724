"""Chat generation. One pair of functions hides where the model runs: in this process (embedded default) or on
a ``serve`` worker through Celery, with streamed chunks coming back over a Redis stream. Models served by an
OpenAI-compatible upstream (vLLM, TGI, …) are called from this process in both modes: a worker hop would only
add latency in front of a server that batches and streams on its own."""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.db import transaction

from apps.chat import streams
from apps.chat.models import ModelEndpoint
from apps.chat.runtime_errors import RUNTIME_ERRORS, to_domain_error
from apps.chat.selectors import local_model_spec, serving_spec
from apps.chat.tasks import generate_task, stream_task
from apps.core import serve_liveness
from tigerplatform.celery import app as celery_app
from workers.errors import DomainError, UpstreamFailed, UpstreamTimeout
from workers.runtime import engine, upstream_lora
from workers.runtime.errors import UpstreamError, UpstreamTimeoutError
from workers.runtime.specs import (
    ChunkStream,
    ClosingStream,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
    StreamChunk,
)


def _in_process(spec: ModelSpec) -> bool:
    return spec.backend == "openai-upstream" or bool(celery_app.conf.task_always_eager)


def _worker_timeout(detail: str) -> DomainError:
    return UpstreamTimeout(f"No serving worker answered: {detail}", code="worker_timeout")


def _choices(request: GenerationRequest, n: int) -> list[GenerationRequest]:
    """The request of each of ``n`` choices: a seeded request gives choice i the seed ``seed + i``, so the choices
    differ and the whole answer stays reproducible."""
    seed = request.params.seed
    if seed is None:
        return [request] * n
    return [replace(request, params=replace(request.params, seed=seed + index)) for index in range(n)]


def _served(request: GenerationRequest) -> GenerationRequest:
    return replace(request, spec=serving_spec(spec=request.spec))


def _local(request: GenerationRequest) -> GenerationRequest:
    return replace(request, spec=local_model_spec(request.spec))


def _await_reply(async_result: Any, watch: serve_liveness.Watch) -> GenerationResult:
    try:
        reply = serve_liveness.wait_for(async_result, watch=watch, timeout_s=settings.CHAT_TASK_TIMEOUT_S)
    except CeleryTimeoutError:
        async_result.revoke()
        raise _worker_timeout(f"waited {settings.CHAT_TASK_TIMEOUT_S} s") from None
    finally:
        async_result.forget()
    if "error" in reply:
        raise DomainError.from_dict(reply["error"])
    return GenerationResult.from_dict(reply["result"])


def final_result(chunks: Iterator[StreamChunk]) -> GenerationResult:
    """The result a stream ends with (reading it to the end)."""
    *_, last = chunks
    if last.result is None:
        raise RuntimeError("a stream ended without its final result")
    return last.result


def chat_complete(*, request: GenerationRequest) -> GenerationResult:
    """The model's answer to the request's messages."""
    return chat_complete_choices(request=request)[0]


def chat_stream(*, request: GenerationRequest) -> ChunkStream:
    """The answer chunk by chunk (see ``chat_stream_choices``)."""
    return chat_stream_choices(request=request)[0]


def chat_complete_choices(*, request: GenerationRequest, n: int = 1) -> list[GenerationResult]:
    """``n`` answers (choices) to the request's messages (or continuations of its raw prompt); they are generated
    side by side, not one after another."""
    request = _served(request)
    if _in_process(request.spec):
        if n == 1:
            try:
                return [engine.generate(request=_local(request))]
            except RUNTIME_ERRORS as exc:
                raise to_domain_error(exc) from exc
        return [final_result(chunks) for chunks in chat_stream_choices(request=request, n=n)]
    pending = [generate_task.delay(choice.to_dict()) for choice in _choices(request, n)]
    watches = [serve_liveness.Watch(async_result.id) for async_result in pending]
    try:
        return [_await_reply(async_result, watch) for async_result, watch in zip(pending, watches, strict=True)]
    except DomainError:
        for async_result in pending:  # one choice failed: the others would answer nobody
            async_result.revoke()
        raise


def chat_stream_choices(*, request: GenerationRequest, n: int = 1) -> list[ChunkStream]:
    """The chunks of each of ``n`` choices; errors that happen before the first chunk (bad input, a full engine,
    an unknown upstream) are raised by this call, later ones by the iterators."""
    request = _served(request)
    if _in_process(request.spec):
        opened: list[ChunkStream] = []
        local = _local(request)
        try:
            for choice in _choices(local, n):
                opened.append(engine.stream(request=choice))
        except RUNTIME_ERRORS as exc:
            for chunks in opened:
                chunks.close()
            raise to_domain_error(exc) from exc
        return [_reraising(chunks) for chunks in opened]
    request_ids = [uuid.uuid4().hex for _ in range(n)]
    watches = [
        serve_liveness.Watch(stream_task.delay(choice.to_dict(), request_id).id)
        for request_id, choice in zip(request_ids, _choices(request, n), strict=True)
    ]
    streamed: list[ChunkStream] = []
    for position, (request_id, watch) in enumerate(zip(request_ids, watches, strict=True)):
        try:
            streamed.append(_first_then_rest(request_id, watch))
        except DomainError:
            for other in request_ids[position + 1 :]:
                streams.cancel(request_id=other)
            for chunks in streamed:
                chunks.close()
            raise
    return streamed


def _first_then_rest(request_id: str, watch: serve_liveness.Watch) -> ChunkStream:
    events = streams.consume(
        request_id=request_id,
        first_timeout_s=settings.CHAT_STREAM_FIRST_TIMEOUT_S,
        idle_timeout_s=settings.CHAT_STREAM_IDLE_TIMEOUT_S,
        on_silence=watch.check,  # no worker took it, or the one that did has died: a 503 now
    )
    try:
        first = _next_event(events)
    except DomainError:
        streams.cancel(request_id=request_id)
        raise
    if "error" in first:
        raise DomainError.from_dict(first["error"])

    def abandon() -> None:  # what _from_events ends with, for a stream closed before it was read
        events.close()
        streams.cancel(request_id=request_id)

    return ClosingStream(_from_events(request_id, first, events), on_unstarted_close=abandon)


def _next_event(events: Iterator[dict[str, Any]]) -> dict[str, Any]:
    try:
        return next(events)
    except streams.StreamTimeoutError as exc:
        raise _worker_timeout(str(exc)) from None


def _from_events(
    request_id: str, first: dict[str, Any], events: Generator[dict[str, Any], None, None]
) -> Generator[StreamChunk, None, None]:
    event, finished = first, False
    try:
        while True:
            if "error" in event:
                finished = True
                raise DomainError.from_dict(event["error"])
            chunk = StreamChunk.from_dict(event["chunk"])
            finished = chunk.finished
            yield chunk
            if finished:
                return
            event = _next_event(events)
    finally:
        events.close()
        if not finished:  # the client went away (or the worker fell silent): stop generating for nobody
            streams.cancel(request_id=request_id)


def _reraising(chunks: ChunkStream) -> ChunkStream:
    def reraised() -> Generator[StreamChunk, None, None]:
        try:
            yield from chunks
        except RUNTIME_ERRORS as exc:
            raise to_domain_error(exc) from exc

    return ClosingStream(reraised(), on_unstarted_close=chunks.close)


def model_endpoint_register(
    *,
    name: str,
    family: str | None = None,
    path: str = "",
    backend: str = "local",
    is_default: bool = False,
    **options: Any,
) -> ModelEndpoint:
    """Create or update a model endpoint; checks the spec the runtime would get, and keeps one default per kind."""
    with transaction.atomic():
        endpoint = ModelEndpoint.objects.select_for_update().filter(name=name).first() or ModelEndpoint(name=name)
        fields = {"family": family or endpoint.family, "path": path, "backend": backend, **options}
        for attribute, value in fields.items():
            setattr(endpoint, attribute, value)
        if is_default:
            others = ModelEndpoint.objects.filter(kind=endpoint.kind, is_default=True).exclude(name=name)
            others.update(is_default=False)
        endpoint.is_default = is_default or endpoint.is_default
        endpoint.full_clean()
        endpoint.save()
        return endpoint


def _upstream_adapter(spec: ModelSpec) -> ModelSpec | None:
    served = serving_spec(spec=spec)
    return served if served.backend == "openai-upstream" and served.adapter_path else None


def upstream_adapter_load(*, spec: ModelSpec) -> None:
    """Load a fine-tuned LoRA adapter (``spec``: its base's spec plus ``adapter_path``) into every replica of the
    vLLM that serves its base; nothing to do when the base runs here. A refusal is a 502 ``adapter_load_failed``."""
    if (served := _upstream_adapter(spec)) is None:
        return
    try:
        upstream_lora.load_everywhere(spec=served)
    except (UpstreamError, UpstreamTimeoutError) as exc:
        raise UpstreamFailed(
            f"The serving upstream could not load the adapter: {exc}", code="adapter_load_failed"
        ) from exc


def upstream_adapter_unload(*, spec: ModelSpec) -> None:
    """Unload it again, best effort (failures are logged: a vLLM that is down has forgotten it anyway)."""
    if (served := _upstream_adapter(spec)) is not None:
        upstream_lora.unload_everywhere(spec=served)
