"""Which replica of an upstream to try first, kept per process.

Replicas that answer are used in turn (round-robin). One whose connection failed is marked down: it is tried
only after all the others, least recently failed first, and once its cool-off has passed a background probe
(``probe(url)``, e.g. ``GET {url}/models``) brings it back when it answers, or starts a new cool-off.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

COOL_OFF_S = float(os.environ.get("UPSTREAM_COOL_OFF_S", "30"))

Probe = Callable[[str], bool]


@dataclass
class _Down:
    failed_at: float
    retry_at: float
    probing: bool = False


class ReplicaHealth:
    """Thread-safe; one instance per process (``replica_health``)."""

    def __init__(self, *, cool_off_s: float = COOL_OFF_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.cool_off_s = cool_off_s
        self._clock = clock
        self._lock = threading.Lock()
        self._down: dict[str, _Down] = {}
        self._turns: dict[tuple[str, ...], int] = {}

    def order(self, urls: Sequence[str], *, probe: Probe | None = None) -> list[str]:
        """Every url once: the healthy ones starting at this call's turn, then the down ones. Down replicas whose
        cool-off has passed are probed in the background (without a probe they count as healthy again)."""
        now = self._clock()
        up: list[str] = []
        down: list[tuple[float, str]] = []
        due: list[str] = []
        with self._lock:
            key = tuple(urls)
            turn = self._turns.get(key, 0)
            self._turns[key] = turn + 1
            for url in urls:
                state = self._down.get(url)
                if state is not None and state.retry_at <= now and probe is None:
                    del self._down[url]
                    state = None
                if state is None:
                    up.append(url)
                    continue
                down.append((state.failed_at, url))
                if probe is not None and state.retry_at <= now and not state.probing:
                    state.probing = True
                    due.append(url)
        for url in due if probe is not None else ():
            threading.Thread(target=self._probe, args=(url, probe), name=f"probe {url}", daemon=True).start()
        start = turn % len(up) if up else 0
        return up[start:] + up[:start] + [url for _, url in sorted(down)]

    def mark_failed(self, url: str) -> None:
        now = self._clock()
        with self._lock:
            state = self._down.get(url)
            if state is None:
                logger.warning("upstream replica %s is down for %.0f s", url, self.cool_off_s)
                self._down[url] = _Down(failed_at=now, retry_at=now + self.cool_off_s)
            else:
                state.failed_at, state.retry_at = now, now + self.cool_off_s

    def mark_up(self, url: str) -> None:
        with self._lock:
            if self._down.pop(url, None) is not None:
                logger.info("upstream replica %s is back", url)

    def is_down(self, url: str) -> bool:
        with self._lock:
            return url in self._down

    def reset(self) -> None:
        with self._lock:
            self._down.clear()
            self._turns.clear()

    def _probe(self, url: str, probe: Probe) -> None:
        try:
            healthy = probe(url)
        except Exception:  # a probe that breaks says the replica is still down, nothing more
            logger.debug("probe of %s failed", url, exc_info=True)
            healthy = False
        if healthy:
            self.mark_up(url)
            return
        with self._lock:
            state = self._down.get(url)
            if state is not None:
                state.probing, state.retry_at = False, self._clock() + self.cool_off_s


replica_health = ReplicaHealth()
