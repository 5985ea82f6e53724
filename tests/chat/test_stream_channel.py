"""The Redis stream between a serving worker and the web process: a first event later than redis-py's socket
timeout (5 s) still arrives, and silence past the idle timeout ends the stream."""

from __future__ import annotations

import threading
import uuid

import pytest

from apps.chat import streams
from tests.conftest import requires_redis


@requires_redis
def test_a_slow_first_event_arrives_and_silence_times_out():
    request_id = uuid.uuid4().hex
    timer = threading.Timer(6.0, lambda: streams.publish(request_id=request_id, event={"delta": "Hi"}))
    timer.start()
    events = streams.consume(request_id=request_id, first_timeout_s=30, idle_timeout_s=1)
    try:
        assert next(events) == {"delta": "Hi"}  # a model load or a queue can take longer than 5 s
        with pytest.raises(streams.StreamTimeoutError):
            next(events)
    finally:
        timer.cancel()
        events.close()
