"""One model, one continuous-batching engine, many concurrent requests.

The engine is transformers' own ``ContinuousBatchingManager`` (paged KV cache, a background thread that mixes
prefill and decode of every active request into shared forward passes). This module only adds what serving
needs around it:

* a bounded admission count, so a full engine refuses at once (``EngineBusyError``, an HTTP 503 with
  Retry-After) instead of letting latency grow without end;
* one output queue per request, fed by a dispatcher thread from the manager's shared output queue;
* cancellation that frees the request's slot and KV blocks (a client that disconnects);
* per-request decoding that the manager does not do on its own: exact greedy (temperature 0) beside sampled
  requests in the same batch, a per-request seed, repetition penalty, a grammar mask (structured outputs) and
  log probabilities. They live in ``_PerRequestDecoding``, a logits processor of the manager's per-request kind,
  appended after its temperature warper.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from transformers import GenerationConfig, GenerationMixin, PreTrainedModel
from transformers.generation.configuration_utils import ContinuousBatchingConfig
from transformers.generation.continuous_batching.cb_logits_processors import ContinuousBatchingLogitsProcessor

from workers.runtime.errors import EngineBusyError, GenerationFailedError
from workers.runtime.metrics import EngineMetrics
from workers.runtime.specs import SamplingParams
from workers.runtime.structured import Constraint

PAGE_SIZE = 256


@dataclass(frozen=True)
class EngineLimits:
    """How much one engine takes on. ``max_pending`` counts queued plus generating requests."""

    max_pending: int = 64
    max_requests_per_batch: int = 32
    max_batch_tokens: int = 512
    kv_cache_tokens: int = 16_384
    retry_after_s: int = 2

    @classmethod
    def from_env(cls) -> EngineLimits:
        """Limits from ``SERVE_MAX_PENDING``, ``SERVE_MAX_BATCH_REQUESTS``, ``SERVE_MAX_BATCH_TOKENS`` and
        ``SERVE_KV_CACHE_TOKENS``; the defaults where unset."""
        names = {
            "max_pending": "SERVE_MAX_PENDING",
            "max_requests_per_batch": "SERVE_MAX_BATCH_REQUESTS",
            "max_batch_tokens": "SERVE_MAX_BATCH_TOKENS",
            "kv_cache_tokens": "SERVE_KV_CACHE_TOKENS",
        }
        return cls(**{field: int(os.environ[name]) for field, name in names.items() if os.environ.get(name)})


@dataclass
class RowExtras:
    """What a request asks of decoding beyond scalar options: a grammar to follow, and log probabilities to
    record (``top_logprobs`` alternatives each) into ``records``, one entry per generated token, written on the
    engine thread before that token is handed out."""

    constraint: Constraint | None = None
    top_logprobs: int | None = None
    records: list[TokenLogprobs] = field(default_factory=list)


@dataclass(frozen=True)
class TokenLogprobs:
    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...]


@dataclass
class _Row:
    options: dict[str, Any]
    step_seed: int | None
    history: list[int]
    extras: RowExtras | None
    mask: torch.Tensor | None


class _PerRequestDecoding(ContinuousBatchingLogitsProcessor):
    """Per row, after the manager's temperature warper: the grammar mask of a constrained request, repetition
    penalty (as ``RepetitionPenaltyLogitsProcessor``), top-k then top-p (as their warpers), then greedy rows keep
    only their argmax, and seeded rows and rows that record log probabilities sample here (so the chosen token is
    known). Rows that ask for none of these cost nothing, so an all-greedy batch sorts no vocabulary.
    Row data is kept on the side between ``prepare_tensor_args`` and ``__call__``: both run on the engine thread
    for the same batch (async batching and CUDA graphs are off)."""

    supported_kwargs: dict[str, type] = {
        "greedy": bool,
        "seed": int,
        "repetition_penalty": float,
        "top_k": int,
        "top_p": float,
    }
    ignored_kwargs: tuple[str, ...] = ()

    def __init__(self, *, vocab_size: int, eos_ids: set[int]) -> None:
        self._rows: list[_Row] = []
        self._vocab_size = vocab_size
        self._eos_ids = sorted(eos_ids)
        # request id -> extras; written by submitting threads, read here (dict operations are atomic).
        self.extras: dict[str, RowExtras] = {}

    def fill_defaults(self, int32_tensor: torch.Tensor) -> None:
        int32_tensor.fill_(0)

    def prepare_tensor_args(self, requests_with_new_token: list[Any]) -> torch.Tensor:
        rows = []
        for request in requests_with_new_token:
            state = request.state
            options = state.logit_processor_kwargs
            penalised = options.get("repetition_penalty", 1.0) != 1.0
            history = list(state.initial_tokens) + list(state.generated_tokens) if penalised else []
            seed = options.get("seed")
            # One generator draw per step, keyed by (seed, position): the same seed gives the same text.
            step_seed = None if seed is None else hash((seed, len(state.generated_tokens))) & 0x7FFFFFFF
            extras = self.extras.get(state.request_id)
            mask = None
            if extras is not None and extras.constraint is not None:
                # The grammar work of the next token happens here, on the CPU, before the forward pass.
                mask = extras.constraint.allowed(state.generated_tokens, vocab_size=self._vocab_size)
                if not bool(mask.any()):  # the matcher failed: end the answer rather than sample from nothing
                    mask[self._eos_ids] = True
            rows.append(_Row(options, step_seed, history, extras, mask))
        self._rows = rows
        return torch.zeros(len(rows), dtype=torch.int32)

    def __call__(self, scores: torch.Tensor, tensor_arg: torch.Tensor) -> torch.Tensor:
        for index, row in enumerate(self._rows[: scores.size(0)]):
            logits, options = scores[index], row.options
            recording = row.extras is not None and row.extras.top_logprobs is not None
            # Log probabilities of the model's own distribution (vLLM's raw logprobs): before the grammar mask,
            # penalties, temperature (undone here), top-k and top-p.
            logprobs = torch.log_softmax(logits.float() * options.get("temperature", 1.0), -1) if recording else None
            if row.mask is not None:
                width = min(logits.numel(), row.mask.numel())
                logits[:width].masked_fill_(~row.mask[:width].to(logits.device), float("-inf"))
                logits[width:] = float("-inf")
            penalty = options.get("repetition_penalty", 1.0)
            if penalty != 1.0 and row.history:
                ids = torch.tensor(row.history, device=scores.device)
                picked = logits.gather(0, ids)
                logits.scatter_(0, ids, torch.where(picked < 0, picked * penalty, picked / penalty))
            if options.get("greedy"):
                chosen = int(torch.argmax(logits))
            else:
                top_k, top_p = options.get("top_k", 0), options.get("top_p", 1.0)
                if 0 < top_k < logits.numel():
                    logits.masked_fill_(logits < torch.topk(logits, top_k).values[-1], float("-inf"))
                if top_p < 1.0:
                    ordered, order = torch.sort(logits)
                    drop = ordered.softmax(-1).cumsum(-1) <= 1 - top_p
                    drop[-1] = False
                    logits.masked_fill_(drop.scatter(0, order, drop), float("-inf"))
                if row.step_seed is None and not recording:
                    continue
                generator = None
                if row.step_seed is not None:
                    generator = torch.Generator(device="cpu").manual_seed(row.step_seed)
                chosen = int(torch.multinomial(torch.softmax(logits.float().cpu(), dim=-1), 1, generator=generator))
            if logprobs is not None and row.extras is not None:
                row.extras.records.append(_token_logprobs(logprobs, chosen, row.extras.top_logprobs or 0))
            logits.fill_(float("-inf"))
            logits[chosen] = 0.0
        return scores


def _token_logprobs(logprobs: torch.Tensor, chosen: int, top: int) -> TokenLogprobs:
    alternatives: tuple[tuple[int, float], ...] = ()
    if top:
        values, ids = torch.topk(logprobs, top)
        alternatives = tuple(zip(ids.tolist(), values.tolist(), strict=True))
    return TokenLogprobs(token_id=chosen, logprob=float(logprobs[chosen]), top=alternatives)


class Submission:
    """A request in the engine: iterate for the cumulative generated token ids; ``cancel`` frees its slot."""

    def __init__(self, engine: BatchingEngine, request_id: str, extras: RowExtras | None = None) -> None:
        self._engine = engine
        self.request_id = request_id
        self.outputs: queue.Queue[Any] = queue.Queue()
        self._done = False
        self.extras = extras
        # Metrics bookkeeping, written under the engine's lock (started) or by its dispatcher thread (counted).
        self.admitted_at = time.monotonic()
        self.started = False
        self.counted = 0

    @property
    def logprobs(self) -> list[TokenLogprobs]:
        """One entry per generated token handed out so far (when log probabilities were asked for)."""
        return self.extras.records if self.extras is not None else []

    def tokens(self, *, timeout_s: float | None = None) -> Iterator[list[int]]:
        """Each item is every token generated so far; ends when the request finishes."""
        while not self._done:
            try:
                output = self.outputs.get(timeout=timeout_s)
            except queue.Empty:
                self.cancel()
                raise GenerationFailedError(f"no token from the engine for {timeout_s} s") from None
            if isinstance(output, BaseException):
                self._done = True
                raise output
            if output.error:
                self._done = True
                raise GenerationFailedError(output.error)
            self._done = output.is_finished()
            yield list(output.generated_tokens)

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            self._engine._cancel(self.request_id)


class BatchingEngine:
    """A loaded model behind one continuous-batching manager. Thread-safe; many threads submit at once."""

    def __init__(self, *, model: PreTrainedModel, eos_ids: set[int], limits: EngineLimits, name: str = "") -> None:
        self.name = name
        self.limits = limits
        self._lock = threading.Lock()
        self._subscribers: dict[str, Submission] = {}
        self._stopping = threading.Event()
        self._metrics = EngineMetrics(model=name)
        # The manager makes a temperature warper only for a temperature other than 1, and only an existing warper
        # takes per-request values; top-k and top-p are left to ``_PerRequestDecoding``, which skips rows that do
        # not use them (the manager's warpers would sort the whole vocabulary of every row at every step).
        generation_config = GenerationConfig(
            do_sample=True,
            temperature=0.7,
            top_k=None,
            top_p=None,
            eos_token_id=sorted(eos_ids),
            max_new_tokens=256,
        )
        config = ContinuousBatchingConfig(
            page_size=PAGE_SIZE,
            num_blocks=max(2, limits.kv_cache_tokens // PAGE_SIZE),
            max_batch_tokens=limits.max_batch_tokens,
            max_requests_per_batch=limits.max_requests_per_batch,
            per_request_processors=True,
            use_async_batching=False,
            use_cuda_graph=False,
            allow_block_sharing=False,
        )
        # A causal LM is a PreTrainedModel and a GenerationMixin (a PeftModel passes the call on to the one it
        # wraps); typing has no way to write that intersection.
        self._manager = cast(GenerationMixin, model).init_continuous_batching(
            generation_config=generation_config, continuous_batching_config=config
        )
        decoding = _PerRequestDecoding(vocab_size=model.config.get_text_config().vocab_size, eos_ids=eos_ids)
        self._decoding = decoding
        processors = self._manager.logit_processor
        processors.logits_processor.append(decoding)
        processors.tensors_required += 1
        processors.supported_keys.update(decoding.supported_kwargs)
        processors.do_processing = True
        # The manager's own start() makes a non-daemon thread, which would keep a finished process from exiting.
        self._manager.background_thread_status.clear()
        generation_thread = threading.Thread(
            target=self._run_loop, args=(torch.get_num_threads(),), name=f"cb-engine-{name}", daemon=True
        )
        # transformers leaves this private attribute unannotated, so its type is that of its initial None.
        self._manager._generation_thread = generation_thread  # type: ignore[assignment]
        generation_thread.start()
        self._dispatcher = threading.Thread(target=self._dispatch, name=f"cb-dispatch-{name}", daemon=True)
        self._dispatcher.start()

    def _run_loop(self, threads: int) -> None:
        # A new thread starts with the OpenMP default (every core), not the process's torch.set_num_threads;
        # on a busy machine the extra spinning threads made each step ~4x slower.
        torch.set_num_threads(threads)
        self._manager._run_generation_loop()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def submit(
        self,
        *,
        prompt_ids: list[int],
        max_new_tokens: int,
        params: SamplingParams,
        constraint: Constraint | None = None,
    ) -> Submission:
        """Queue a request; raises ``EngineBusyError`` when ``max_pending`` requests are already in.
        ``constraint`` holds decoding to a grammar; ``params.logprobs`` records log probabilities."""
        request_id = uuid.uuid4().hex
        extras = None
        if constraint is not None or params.logprobs:
            extras = RowExtras(constraint=constraint, top_logprobs=params.top_logprobs if params.logprobs else None)
        submission = Submission(self, request_id, extras)
        with self._lock:
            if len(self._subscribers) >= self.limits.max_pending:
                self._metrics.rejections.inc()
                raise EngineBusyError(pending=len(self._subscribers), retry_after_s=self.limits.retry_after_s)
            self._subscribers[request_id] = submission
            self._metrics.waiting.inc()
        self._metrics.prompt_tokens.inc(len(prompt_ids))
        options: dict[str, Any] = {
            "temperature": float(params.temperature) if params.temperature > 0 else 1.0,
            "top_p": float(params.top_p),
            "top_k": int(params.top_k),
            "greedy": params.temperature == 0,
            "repetition_penalty": float(params.repetition_penalty),
        }
        if params.seed is not None:
            options["seed"] = int(params.seed)
        if extras is not None:
            self._decoding.extras[request_id] = extras
        added = self._manager.add_request(
            input_ids=prompt_ids, request_id=request_id, max_new_tokens=max_new_tokens, streaming=True, **options
        )
        if added is None:
            self._forget(request_id)
            raise GenerationFailedError("the engine is stopping and takes no new requests")
        return submission

    def _forget(self, request_id: str) -> None:
        with self._lock:
            submission = self._subscribers.pop(request_id, None)
            if submission is not None:
                self._left(submission)
        self._decoding.extras.pop(request_id, None)

    def _left(self, submission: Submission) -> None:
        """A request left the engine (finished, cancelled or failed); called under the lock."""
        (self._metrics.active if submission.started else self._metrics.waiting).dec()

    def _cancel(self, request_id: str) -> None:
        self._forget(request_id)
        self._manager.cancel_request(request_id)

    def _dispatch(self) -> None:
        """Routes the manager's outputs to their requests; fails everyone if the engine thread dies."""
        manager = self._manager
        while not self._stopping.is_set():
            output = manager.get_result(timeout=0.2)
            if output is None:
                fatal = manager.background_thread_status.fatal_error
                if fatal is not None or not manager.is_running():
                    self._fail_all(GenerationFailedError(f"the engine stopped: {fatal or 'not running'}"))
                    if self._stopping.wait(0.2):
                        return
                continue
            generated = len(output.generated_tokens)
            with self._lock:
                submission = self._subscribers.get(output.request_id)
                if submission is not None:
                    if generated and not submission.started:
                        submission.started = True
                        self._metrics.waiting.dec()
                        self._metrics.active.inc()
                        self._metrics.time_to_first_token.observe(time.monotonic() - submission.admitted_at)
                    if output.is_finished():
                        del self._subscribers[output.request_id]
                        self._decoding.extras.pop(output.request_id, None)
                        self._left(submission)
            if submission is not None:
                if generated > submission.counted:
                    self._metrics.generated_tokens.inc(generated - submission.counted)
                    submission.counted = generated
                submission.outputs.put(output)

    def _fail_all(self, error: BaseException) -> None:
        with self._lock:
            failed, self._subscribers = list(self._subscribers.values()), {}
            for submission in failed:
                self._left(submission)
        for submission in failed:
            submission.outputs.put(error)

    def close(self) -> None:
        self._stopping.set()
        self._manager.stop(block=True, timeout=30, hard_stop=True)
        self._fail_all(GenerationFailedError("the engine was closed"))
