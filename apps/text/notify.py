"""Wakes requests that wait for a job (``?wait=``) the moment it ends: with Redis, a tiny stream per job that the
finishing worker appends to and waiters block on (every waiter sees it, late ones too); without Redis, jobs run
in-process and waiters simply poll the database."""

from __future__ import annotations

import logging
from functools import cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

_KEY = "tp:textjob:{}"
_TTL_S = 600


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def enabled() -> bool:
    return bool(settings.REDIS_URL)


def job_finished(*, job_id: str) -> None:
    if not enabled():
        return
    key = _KEY.format(job_id)
    try:
        pipe = _client().pipeline()
        pipe.xadd(key, {"done": "1"}, maxlen=10)
        pipe.expire(key, _TTL_S)
        pipe.execute()
    except redis.RedisError:  # waiters fall back to reading the job
        logger.warning("could not announce the end of %s", job_id, exc_info=True)


def wait_finished(*, job_id: str, timeout_s: float) -> bool:
    """True when the job's end has been announced (before or during the wait)."""
    try:
        reply = _client().xread({_KEY.format(job_id): "0-0"}, count=1, block=max(1, int(timeout_s * 1000)))
    except redis.RedisError:
        logger.warning("could not wait on %s", job_id, exc_info=True)
        return False
    return bool(reply)
