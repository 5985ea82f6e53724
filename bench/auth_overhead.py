"""Requests/second of an authenticated trivial endpoint ÷ the same endpoint without authentication.

The authenticated side pays for key parsing, the verified-key cache, the hash check, last-used bookkeeping and
the per-key rate limit. Measured two ways in one run:
- ``http``: through a real gunicorn server on 127.0.0.1 with a keep-alive client (what a caller sees);
- ``in-process``: Django's test client over the whole middleware + DRF stack, no network (the strictest view).
Small batches alternate between the two endpoints and each keeps its fastest batch: on a shared machine the
minimum time is the figure least disturbed by other processes. Goal: ratio ≥ 0.90.

    python bench/auth_overhead.py [--batch 200] [--batches 30]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

from _common import ROOT, setup_django


def _alternate(call: Callable[[str], object], *, batch: int, batches: int) -> tuple[float, float]:
    def rate(url: str) -> float:
        start = time.perf_counter()
        for _ in range(batch):
            call(url)
        return batch / (time.perf_counter() - start)

    rate("auth"), rate("open")  # warm up
    authed, public = [], []
    for _ in range(batches):
        authed.append(rate("auth"))
        public.append(rate("open"))
    return max(authed), max(public)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _report(label: str, authed: float, public: float) -> None:
    print(
        f"{label:>10}: authenticated {authed:8,.0f} req/s   unauthenticated {public:8,.0f} req/s   "
        f"ratio {authed / public:.3f}  (goal >= 0.90)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    setup_django()

    import httpx
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings

    from apps.accounts.services import api_key_create

    user, _ = get_user_model().objects.get_or_create(username="bench")
    key = api_key_create(owner=user, name="bench", rate_limit_per_minute=10**9).plaintext
    headers = {"Authorization": f"Bearer {key}"}

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "bench.auth_wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "1",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/", headers=headers) as http:
            for _ in range(100):
                try:
                    if http.get("auth").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert http.get("auth").status_code == 200 and http.get("open").status_code == 200
            _report("http", *_alternate(http.get, batch=args.batch, batches=args.batches))
    finally:
        server.terminate()
        server.wait()

    with override_settings(ROOT_URLCONF="bench.auth_app"):
        client = Client(HTTP_AUTHORIZATION=headers["Authorization"])
        assert client.get("/auth").status_code == 200
        _report("in-process", *_alternate(lambda url: client.get(f"/{url}"), batch=args.batch, batches=args.batches))


if __name__ == "__main__":
    main()
