"""Process-local cache of verified API keys, so authentication costs no database query per request.

Any change that can invalidate a key (revocation, deletion, rate-limit edit, owner deactivation, account limits
edit) bumps a shared *epoch*; every request compares the epoch it last saw and drops the whole cache when it moved.
The epoch lives in Redis when configured (shared by every host) and otherwise in a file's mtime under ``var/``
(shared by every process of the embedded single-host setup). Expiry is checked on the cached row itself.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from django.conf import settings
from django.core.cache import cache

from apps.accounts.models import ApiKey

_EPOCH_CACHE_KEY = "apikeys:epoch"
_MAX_ENTRIES = 10_000


class _Epoch:
    def __init__(self) -> None:
        self._path: str | None = None

    def _file(self) -> str:
        if self._path is None:
            self._path = str(settings.API_KEY_EPOCH_FILE)
        return self._path

    def read(self) -> int:
        if settings.REDIS_URL:
            return int(cache.get(_EPOCH_CACHE_KEY) or 0)
        try:
            return os.stat(self._file()).st_mtime_ns
        except FileNotFoundError:
            return 0

    def bump(self) -> None:
        if settings.REDIS_URL:
            cache.add(_EPOCH_CACHE_KEY, 0, timeout=None)
            cache.incr(_EPOCH_CACHE_KEY)
            return
        path = Path(self._file())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        stamp = max(time.time_ns(), self.read() + 1)
        os.utime(path, ns=(stamp, stamp))


class VerifiedKeyCache:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[ApiKey, float]] = OrderedDict()
        self._last_touch: dict[str, float] = {}
        self._epoch = _Epoch()
        self._seen_epoch: int | None = None
        self._lock = threading.Lock()

    def get(self, prefix: str) -> ApiKey | None:
        epoch = self._epoch.read()
        with self._lock:
            if epoch != self._seen_epoch:
                self._entries.clear()
                self._seen_epoch = epoch
            entry = self._entries.get(prefix)
            if entry is None or time.monotonic() - entry[1] > settings.API_KEY_CACHE_SECONDS:
                return None
            return entry[0]

    def put(self, api_key: ApiKey) -> None:
        with self._lock:
            self._entries[api_key.prefix] = (api_key, time.monotonic())
            self._entries.move_to_end(api_key.prefix)
            while len(self._entries) > _MAX_ENTRIES:
                self._entries.popitem(last=False)

    def should_touch(self, prefix: str) -> bool:
        """True at most once per resolution window per process (the shared cache then dedupes processes)."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_touch.get(prefix, -1e18) < settings.API_KEY_LAST_USED_RESOLUTION_S:
                return False
            self._last_touch[prefix] = now
            return True

    def invalidate_everywhere(self) -> None:
        self._epoch.bump()
        with self._lock:
            self._entries.clear()
            self._last_touch.clear()


verified_keys = VerifiedKeyCache()
