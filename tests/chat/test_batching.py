"""The continuous-batching engine under concurrent load, with real tiny checkpoints."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from tests.chat.conftest import GREETING, GREETING_ANSWER, local_spec
from workers.runtime.batching import EngineLimits
from workers.runtime.errors import EngineBusyError
from workers.runtime.local import LocalRuntime
from workers.runtime.specs import ChatMessage, Family, GenerationRequest, SamplingParams

GREEDY = SamplingParams(temperature=0)


def _wait_until_idle(runtime: LocalRuntime, spec: object, timeout_s: float = 10) -> int:
    deadline = time.monotonic() + timeout_s
    while (pending := runtime.engine(spec=spec).pending) and time.monotonic() < deadline:  # type: ignore[arg-type]
        time.sleep(0.02)
    return pending


def test_concurrent_requests_share_the_engine_and_each_get_their_own_answer(
    chatty_model: Path, tiny_models: dict[Family, Path]
) -> None:
    runtime = LocalRuntime()
    spec = local_spec(chatty_model)
    other = [ChatMessage(role="user", content="Tell me something.")]
    alone = runtime.generate(request=GenerationRequest(spec=spec, messages=other, params=GREEDY))
    jobs = [([GREETING], GREEDY), (other, GREEDY), ([GREETING], SamplingParams(temperature=1.0, seed=7))] * 4
    requests = [GenerationRequest(spec=spec, messages=messages, params=params) for messages, params in jobs]
    with ThreadPoolExecutor(len(requests)) as pool:
        results = list(pool.map(lambda request: runtime.generate(request=request), requests))
    assert [r.text for r in results[0::3]] == [GREETING_ANSWER] * 4  # greedy rows stay exact beside sampled rows
    assert all(r == alone for r in results[1::3])
    assert len({r.text for r in results[2::3]}) == 1  # one seed, one sample, whatever the batch around it


def test_a_full_engine_refuses_at_once_with_retry_after(chatty_model: Path) -> None:
    runtime = LocalRuntime(limits=EngineLimits(max_pending=2, retry_after_s=3))
    spec = local_spec(chatty_model, max_new_tokens=200)
    long = SamplingParams(temperature=1.0, max_new_tokens=200)
    greeting = GenerationRequest(spec=spec, messages=[GREETING], params=GREEDY)
    held = [runtime.stream(request=replace(greeting, params=long)) for _ in range(2)]
    with pytest.raises(EngineBusyError) as refused:
        runtime.stream(request=greeting)
    assert refused.value.retry_after_s == 3
    for stream in held:
        stream.close()  # type: ignore[attr-defined]
    assert _wait_until_idle(runtime, spec) == 0
    assert runtime.generate(request=greeting).text == GREETING_ANSWER


def test_closing_a_stream_cancels_the_request_and_frees_its_slot(tiny_models: dict[Family, Path]) -> None:
    runtime = LocalRuntime()
    # A random model rarely says eos: left alone, this request would run for its 2000 tokens (many seconds).
    spec = local_spec(tiny_models["tigerbot"], max_new_tokens=2000)
    chunks = runtime.stream(
        request=GenerationRequest(spec=spec, messages=[GREETING], params=SamplingParams(temperature=1.0))
    )
    next(chunks)
    assert runtime.engine(spec=spec).pending == 1
    chunks.close()  # type: ignore[attr-defined]
    assert _wait_until_idle(runtime, spec, timeout_s=2) == 0
