"""With Redis: the batch task runs on a real worker (queue `batch`) and its lines on the `serve` queue."""

from __future__ import annotations

import pytest

from tests.conftest import requires_redis

from .conftest import GREETING_ANSWER, chat_line, create_batch, file_lines, wait_for_batch

pytestmark = [requires_redis, pytest.mark.redis]


def test_a_batch_on_a_real_worker(tenant, chatty, batch_worker, settings):
    settings.BATCH_CONCURRENCY = 2
    created = create_batch(tenant.client, [chat_line("a"), chat_line("b"), "{bad"])
    batch = wait_for_batch(created["id"], timeout_s=120)
    assert batch.status == "completed", batch.errors
    assert (batch.request_completed, batch.request_failed) == (2, 1)
    output = file_lines(tenant.client, batch.output_file_id)
    assert [line["response"]["body"]["choices"][0]["message"]["content"] for line in output] == [GREETING_ANSWER] * 2
