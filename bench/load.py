"""The platform under load: ``--clients`` concurrent clients for ``--duration`` seconds on chat and embeddings.

Without ``--url`` it starts its own platform the way ``make run`` does with Redis (``bench/_stack.py``: its own
PostgreSQL cluster and Redis server on free ports, gunicorn, a ``serve`` worker and a jobs worker), one API key
per client (``--rate-limit`` requests/minute each, the platform's default 600), plus one probe client on a key
limited to ``--probe-limit`` (3) requests a minute that calls ``GET /v1/models`` over and over, so the 429 path is
exercised under load. With ``--url`` and ``--key`` it loads a running platform instead (every client on that key).

Each client cycles through five calls, greedy, at most ``--max-tokens`` new tokens (small: it measures the
platform, not the model): ``/v1/chat/completions`` (OpenAI dialect) plain and streamed, the same route in the
native TigerBot dialect (``query``) plain and streamed, and ``/v1/embeddings``. A 429 must carry ``Retry-After``
(the client then waits that long); it is counted apart. Anything else that is not a well-formed 200 (a 5xx, a
timeout after ``--timeout`` s, a body without its content or usage) is an error, and the run fails on any.

Per call: requests, errors, 429s, p50/p95 latency, p50/p95 time to first token (streams), requests/s and tokens/s
(completion tokens for chat, input tokens for embeddings). When the platform has ``/metrics`` (Prometheus text,
open to loopback), the counters about requests, tokens and rate limiting that moved are printed as deltas.

    python bench/load.py [--clients 50] [--duration 60] [--max-tokens 16]
    python bench/load.py --url http://127.0.0.1:8000 --key tb-… [--clients 50] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

PROMPTS = [
    "What is the capital of France?",
    "Name three colors.",
    "Explain why the sky is blue in one sentence.",
    "Give me a tip for learning to cook.",
    "Write one line about the sea.",
    "What is two plus two?",
    "Describe a tiger in a few words.",
    "Tell me a fact about the Moon.",
]
KINDS = ["chat", "chat stream", "native", "native stream", "embeddings"]
LABELS = {
    "chat": "/v1/chat/completions",
    "chat stream": "/v1/chat/completions stream",
    "native": "native chat (query)",
    "native stream": "native chat stream",
    "embeddings": "/v1/embeddings",
    "probe": "GET /v1/models (probe key)",
}


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    tokens: int = 0
    limited: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.limited + sum(self.errors.values())


class BadBody(Exception):
    pass


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _body(kind: str, prompt: str, args: argparse.Namespace) -> tuple[str, dict[str, object]]:
    if kind == "embeddings":
        return "/v1/embeddings", {"model": args.embedding_model, "input": prompt}
    stream = kind.endswith("stream")
    if kind.startswith("native"):
        return "/v1/chat/completions", {
            "query": prompt,
            "temperature": 0,
            "max_tokens": args.max_tokens,
            "stream": stream,
        }
    body: dict[str, object] = {
        "model": args.chat_model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": args.max_tokens,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return "/v1/chat/completions", body


def _tokens(kind: str, data: dict[str, object]) -> int:
    """Completion tokens of a chat answer (input tokens of an embedding) from its body; BadBody if malformed."""
    try:
        if kind == "embeddings":
            assert data["data"] and data["data"][0]["embedding"]  # type: ignore[index]
            return int(data["usage"]["prompt_tokens"])  # type: ignore[index]
        if kind == "native":
            assert isinstance(data["result"], str)
            return int(data["total_tokens"]) - int(data["input_tokens"])  # type: ignore[call-overload]
        assert data["choices"][0]["message"]["content"] is not None  # type: ignore[index]
        return int(data["usage"]["completion_tokens"])  # type: ignore[index]
    except (KeyError, IndexError, TypeError, ValueError, AssertionError) as exc:
        raise BadBody(f"malformed body: {json.dumps(data)[:200]}") from exc


async def _stream(
    http: httpx.AsyncClient, kind: str, path: str, body: dict[str, object], start: float
) -> tuple[int, float | None, httpx.Response]:
    first: float | None = None
    tokens, finished = 0, False
    async with http.stream("POST", path, json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return 0, None, response
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[len("data: ") :])
            text = (
                event.get("new_text")
                if kind.startswith("native")
                else (event.get("choices") or [{}])[0].get("delta", {}).get("content")
            )
            if text and first is None:
                first = time.perf_counter() - start
            if kind.startswith("native") and event.get("finished"):
                tokens, finished = int(event["total_tokens"]) - int(event["input_tokens"]), True
            elif event.get("usage"):
                tokens, finished = int(event["usage"]["completion_tokens"]), True
    if not finished:
        raise BadBody("stream ended without its final event")
    return tokens, first, response


async def _call(http: httpx.AsyncClient, kind: str, prompt: str, args: argparse.Namespace, stats: Stats) -> float:
    """One request, recorded in ``stats``; returns how long the client should wait before its next one."""
    path, body = _body(kind, prompt, args)
    start = time.perf_counter()
    try:
        if kind.endswith("stream"):
            tokens, first, response = await _stream(http, kind, path, body, start)
        else:
            response = await http.post(path, json=body)
            first = None
            tokens = _tokens(kind, response.json()) if response.status_code == 200 else 0
    except httpx.TimeoutException:
        stats.errors[f"timeout after {args.timeout:.0f} s"] += 1
        return 0
    except (httpx.HTTPError, BadBody, json.JSONDecodeError) as exc:
        stats.errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
        return 0
    return _record(response, stats=stats, elapsed=time.perf_counter() - start, first=first, tokens=tokens)


def _record(response: httpx.Response, *, stats: Stats, elapsed: float, first: float | None, tokens: int) -> float:
    if response.status_code == 200:
        stats.latencies.append(elapsed)
        stats.tokens += tokens
        if first is not None:
            stats.ttfts.append(first)
        return 0
    if response.status_code == 429:
        retry_after = response.headers.get("retry-after", "")
        if retry_after.isdigit():
            stats.limited += 1
            return float(retry_after)
        stats.errors[f"429 without a valid Retry-After ({retry_after!r})"] += 1
        return 1
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = response.text[:80]
    stats.errors[f"{response.status_code} {code}"] += 1
    return 0


async def _client(
    index: int, key: str, url: str, args: argparse.Namespace, stats: dict[str, Stats], until: float
) -> None:
    async with httpx.AsyncClient(
        base_url=url, timeout=args.timeout, headers={"Authorization": f"Bearer {key}"}
    ) as http:
        turn = index
        while time.monotonic() < until:
            kind = KINDS[turn % len(KINDS)]
            wait = await _call(http, kind, PROMPTS[turn % len(PROMPTS)], args, stats[kind])
            turn += 1
            if wait:
                await asyncio.sleep(min(wait, max(0.0, until - time.monotonic())))


async def _probe(key: str, url: str, args: argparse.Namespace, stats: Stats, until: float) -> None:
    async with httpx.AsyncClient(
        base_url=url, timeout=args.timeout, headers={"Authorization": f"Bearer {key}"}
    ) as http:
        while time.monotonic() < until:
            start = time.perf_counter()
            try:
                response = await http.get("/v1/models")
            except httpx.HTTPError as exc:
                stats.errors[type(exc).__name__] += 1
                continue
            if response.status_code == 200 and "data" not in response.json():
                stats.errors["malformed /v1/models body"] += 1
                continue
            wait = _record(response, stats=stats, elapsed=time.perf_counter() - start, first=None, tokens=0)
            await asyncio.sleep(min(max(wait, 0.5), max(0.0, until - time.monotonic())))


def _warm_up(url: str, key: str, args: argparse.Namespace) -> None:
    """One call of each kind, one after another: the first loads the models in the serving worker."""

    async def run() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=600, headers={"Authorization": f"Bearer {key}"}) as http:
            for kind in KINDS:
                stats = Stats()
                await _call(http, kind, PROMPTS[0], args, stats)
                if stats.errors or not stats.latencies:
                    sys.exit(f"warm-up {kind} failed: {dict(stats.errors) or 'rate limited'}")

    asyncio.run(run())


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_STATUS = re.compile(r'(?:status|code)="(\d{3})"')
# django-prometheus' request and response counters, and the platform's own counters of tokens and rate limiting.
_INTERESTING = re.compile(
    r"^(django_http_requests_total_by_method_total|django_http_responses_total_by_status_total"
    r"|tigerplatform_\w*(rate_limited|tokens|requests|tasks)\w*_total"
    r"|tigerplatform_time_to_first_token_seconds_count)$"
)


def _metrics(url: str) -> dict[str, float] | None:
    """The interesting counters, summed over their labels but the HTTP status; None without /metrics."""
    try:
        response = httpx.get(f"{url}/metrics", timeout=10)
    except httpx.HTTPError:
        return None
    if response.status_code != 200 or "# TYPE" not in response.text:
        return None
    samples: dict[str, float] = defaultdict(float)
    for line in response.text.splitlines():
        match = _SAMPLE.match(line)
        if not match or not _INTERESTING.match(match.group(1)):
            continue
        status = _STATUS.search(match.group(2) or "")
        try:
            samples[match.group(1) + (f'{{status="{status.group(1)}"}}' if status else "")] += float(match.group(3))
        except ValueError:
            continue
    return samples


def _print_metric_deltas(before: dict[str, float] | None, after: dict[str, float] | None) -> None:
    if before is None or after is None:
        print("/metrics: not available on this platform (skipped)")
        return
    deltas = {name: value - before.get(name, 0.0) for name, value in sorted(after.items())}
    moved = {name: delta for name, delta in deltas.items() if delta}
    print("/metrics deltas over the run (warm-up excluded):" if moved else "/metrics: no counter of interest moved")
    for name, delta in moved.items():
        print(f"  {name:70s} {delta:+10.0f}")


def _report(stats: dict[str, Stats], wall: float) -> int:
    print(
        f"{'call':30s} {'reqs':>6s} {'errors':>6s} {'429':>5s} {'p50 s':>7s} {'p95 s':>7s} {'ttft50':>7s} "
        f"{'ttft95':>7s} {'req/s':>6s} {'tok/s':>7s}"
    )
    errors = 0
    for kind, item in stats.items():
        if not item.requests:
            continue
        ttft = (
            f"{statistics.median(item.ttfts):7.2f} {_pct(item.ttfts, 0.95):7.2f}"
            if item.ttfts
            else f"{'-':>7s} {'-':>7s}"
        )
        tokens = f"{item.tokens / wall:7.1f}" if kind != "probe" else f"{'-':>7s}"
        print(
            f"{LABELS[kind]:30s} {item.requests:6d} {sum(item.errors.values()):6d} {item.limited:5d} "
            f"{statistics.median(item.latencies) if item.latencies else float('nan'):7.2f} "
            f"{_pct(item.latencies, 0.95):7.2f} {ttft} {len(item.latencies) / wall:6.2f} {tokens}"
        )
        errors += sum(item.errors.values())
    for kind, item in stats.items():
        for reason, count in item.errors.most_common():
            print(f"  error on {LABELS[kind]}: {reason} ×{count}")
    return errors


@contextmanager
def _target(args: argparse.Namespace) -> Iterator[tuple[str, list[str], str | None]]:
    """(base URL, one key per client, the probe's key or None)."""
    if args.url:
        if not args.key:
            sys.exit("--url needs --key")
        yield args.url.rstrip("/"), [args.key] * args.clients, None
        return
    from _stack import stack

    env = {"WEB_THREADS": os.environ.get("WEB_THREADS", "16")}
    limits = [args.rate_limit] * args.clients + [args.probe_limit]
    with stack(rate_limits=limits, env=env, keep=args.keep) as (platform, *_, keys):
        yield platform.url, keys[:-1], keys[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running platform (default: start one)")
    parser.add_argument("--key", help="its API key (with --url)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=120, help="client timeout per request, s")
    parser.add_argument("--rate-limit", type=int, default=600, help="requests/minute of each client's key")
    parser.add_argument("--probe-limit", type=int, default=3, help="requests/minute of the probe's key")
    parser.add_argument("--chat-model", default="smollm2-135m-instruct")
    parser.add_argument("--embedding-model", default="multilingual-e5-small")
    parser.add_argument("--keep", action="store_true", help="keep the started platform's logs")
    args = parser.parse_args()

    started = time.monotonic()
    with _target(args) as (url, keys, probe_key):
        print(f"platform ready in {time.monotonic() - started:.0f} s at {url}; warming up")
        _warm_up(url, keys[0], args)
        before = _metrics(url)
        stats: dict[str, Stats] = {kind: Stats() for kind in [*KINDS, "probe"]}
        load_before = os.getloadavg()

        async def run() -> float:
            until = time.monotonic() + args.duration
            begin = time.monotonic()
            tasks = [_client(i, keys[i], url, args, stats, until) for i in range(args.clients)]
            if probe_key:
                tasks.append(_probe(probe_key, url, args, stats["probe"], until))
            await asyncio.gather(*tasks)
            return time.monotonic() - begin

        wall = asyncio.run(run())
        load_after = os.getloadavg()
        after = _metrics(url)
    print(
        f"{args.clients} clients for {args.duration:.0f} s (wall {wall:.0f} s incl. the last answers), greedy, "
        f"max {args.max_tokens} new tokens, client timeout {args.timeout:.0f} s; machine: {os.cpu_count()} CPUs, "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} (1 min) / {load_after[1]:.2f} (5 min) "
        f"after"
    )
    errors = _report(stats, wall)
    total_ok = sum(len(item.latencies) for kind, item in stats.items() if kind != "probe")
    print(
        f"total: {total_ok} answered ({total_ok / wall:.2f} req/s), {errors} errors, "
        f"{sum(item.limited for item in stats.values())} rate-limited with Retry-After"
    )
    _print_metric_deltas(before, after)
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
