"""The line runner's overload back-off: a 503 model_overloaded (or no serve worker to answer) is waited out,
anything else is the answer."""

from __future__ import annotations

import threading

import pytest

from apps.batches.endpoints import LineAnswer
from apps.batches.runner import LineNotRun, OverloadRetry, call_with_overload_retry
from apps.core.errors import status_of
from workers.errors import DomainError, InvalidRequest, Unavailable

FAST = OverloadRetry(first_delay_s=0.01, max_delay_s=0.02, max_wait_s=1.0)
ANSWER = LineAnswer(body={"ok": True}, model="m", prompt_tokens=1, completion_tokens=1)


def _overloaded(code: str = "model_overloaded") -> DomainError:
    return Unavailable("busy", code=code, retry_after_s=0)


def _answers(*replies: Exception | LineAnswer):
    remaining = list(replies)

    def call() -> LineAnswer:
        reply = remaining.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return call


def test_overloaded_lines_are_retried():
    call = _answers(_overloaded(), _overloaded(), ANSWER)
    assert call_with_overload_retry(call, stop=threading.Event(), retry=FAST) == ANSWER


@pytest.mark.parametrize("code", ["no_serving_worker", "worker_lost", "request_lost"])
def test_lines_no_serve_worker_answered_are_retried(code):
    call = _answers(_overloaded(code), ANSWER)
    assert call_with_overload_retry(call, stop=threading.Event(), retry=FAST) == ANSWER


def test_other_unavailable_errors_are_not_retried():
    call = _answers(Unavailable("down", code="service_unavailable"), ANSWER)
    with pytest.raises(DomainError, match="down"):
        call_with_overload_retry(call, stop=threading.Event(), retry=FAST)


def test_other_errors_are_not_retried():
    call = _answers(InvalidRequest("bad", param="n"), ANSWER)
    with pytest.raises(DomainError, match="bad"):
        call_with_overload_retry(call, stop=threading.Event(), retry=FAST)


def test_the_wait_is_bounded_and_ends_with_the_503():
    retry = OverloadRetry(first_delay_s=0.01, max_delay_s=0.01, max_wait_s=0.05)
    call = _answers(*[_overloaded()] * 100)
    with pytest.raises(DomainError) as raised:
        call_with_overload_retry(call, stop=threading.Event(), retry=retry)
    assert status_of(raised.value) == 503


def test_a_stopped_batch_gives_up_waiting():
    stop = threading.Event()
    stop.set()
    with pytest.raises(LineNotRun):
        call_with_overload_retry(_answers(_overloaded(), ANSWER), stop=stop, retry=FAST)
