"""The platform through faults: what a crash or a restart of each dependency leaves behind.

It starts its own platform (``bench/_stack.py``: its own PostgreSQL cluster and Redis server on free ports, never the
machine's shared ones; gunicorn, a ``serve`` worker and a jobs worker with beat), with the stale-job timeouts
shortened so that the periodic checks act within a minute or two, then in turn:

1. ingest: a plugin upload of ``--docs`` documents; the jobs worker is SIGKILLed (its whole process group) while the
   documents are being indexed, then started again (as a supervisor would);
2. training: a small LoRA fine-tune of the default model (SmolLM2-135M); the jobs worker is SIGKILLed after the
   first checkpoint, started again; the job must end failed with a reason (``worker_lost``), no training process
   may outlive its worker, and resuming it (``POST /v1/finetunes/{id}/resume``) must finish it from its checkpoint;
3. Redis restarted, then 4. PostgreSQL restarted, each while two clients chat and embed.

After each fault it checks: every job ends succeeded, failed with a reason or retried (none left queued or running
past ``--deadline`` seconds); no HTTP request hangs past its client timeout; an error is JSON with a code, never a
bare 500; nothing is half-written (a plugin's processed documents are all found by a search for their own marker
word, the run's counts add up); the platform answers again after a restart. Prints a table of outcomes and exits
non-zero when a check fails.

    python bench/faults.py [--docs 20] [--deadline 300] [--only ingest,training,redis,postgres] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from _stack import Platform, Postgres, Redis, stack

ENV = {
    # The periodic checks (beat, every 60 s) then fail or resume stale work within a minute or two.
    "FINETUNE_STALE_AFTER_S": "30",
    "BATCH_STALE_AFTER_S": "30",
    # One document per index commit, so the ingest is still under way when the worker is killed.
    "PLUGINS_INGEST_BATCH": "1",
    "CHAT_STREAM_FIRST_TIMEOUT_S": "60",
    "CHAT_STREAM_IDLE_TIMEOUT_S": "20",
    "CHAT_TASK_TIMEOUT_S": "60",
}
CLIENT_TIMEOUT_S = 90
PAIRS = [(f"What is the secret number of Zorblat{i}?", f"It is {4100 + i * 7}.") for i in range(8)]


@dataclass
class Outcome:
    fault: str
    passed: bool
    details: list[str] = field(default_factory=list)


def _api(platform: Platform, key: str) -> httpx.Client:
    return httpx.Client(base_url=platform.url, timeout=CLIENT_TIMEOUT_S, headers={"Authorization": f"Bearer {key}"})


def _wait(predicate: object, *, timeout_s: float, interval_s: float = 1.0) -> object:
    """Polls ``predicate()`` until it returns something truthy (returned) or the time is up (None)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()  # type: ignore[operator]
        if value:
            return value
        time.sleep(interval_s)
    return None


def _document(index: int) -> tuple[str, bytes]:
    paragraphs = "\n\n".join(
        f"Section {p} of policy {index}. Employees of unit {index} file requests through the portal; the reviewer "
        f"answers within {p + 2} days, and appeals go to the board of unit {index}."
        for p in range(8)
    )
    return f"policy-{index:02d}.md", f"# Policy {index}\n\nmarker{index:02d}zq\n\n{paragraphs}\n".encode()


def fault_ingest(platform: Platform, key: str, *, docs: int, deadline_s: float) -> Outcome:
    outcome = Outcome("jobs worker SIGKILL mid-ingest", passed=True)
    with _api(platform, key) as api:
        plugin = api.post("/v1/plugin/custom/plugins", json={"name": f"faults-{time.time_ns()}"}).json()["plugin_id"]
        files = [("file", _document(i)) for i in range(docs)]
        response = api.post(f"/v1/plugin/custom/plugins/{plugin}/files", files=files)
        assert response.status_code in (200, 201, 202), response.text

        def run() -> dict[str, object]:
            return api.get(f"/v1/plugin/custom/plugins/{plugin}").json().get("ingest") or {}

        started = _wait(
            lambda: (r := run()) and 1 <= int(r.get("done", 0)) < int(r.get("total", 1)) and r,
            timeout_s=120,
            interval_s=0.1,
        )
        if not started:
            return Outcome(outcome.fault, False, [f"could not catch the ingest under way: {run()}"])
        platform.kill_jobs_worker()
        outcome.details.append(f"killed at {started['done']}/{started['total']} documents indexed")
        time.sleep(2)
        platform.start_jobs_worker()
        began = time.monotonic()

        def settled() -> dict[str, object] | None:
            body = api.get(f"/v1/plugin/custom/plugins/{plugin}").json()
            ingest, dense = body.get("ingest") or {}, body["dense"]
            if ingest.get("status") in ("succeeded", "failed") and dense["status"] in ("ready", "failed"):
                return body
            return None

        body = _wait(settled, timeout_s=deadline_s, interval_s=2)
        if body is None:
            latest = api.get(f"/v1/plugin/custom/plugins/{plugin}").json()
            outcome.passed = False
            outcome.details.append(
                f"STUCK after {deadline_s:.0f} s: ingest {latest.get('ingest')}, dense {latest['dense']['status']}"
            )
        else:
            assert isinstance(body, dict)
            outcome.details.append(
                f"settled {time.monotonic() - began:.0f} s after the restart: ingest "
                f"{body['ingest']['status']} {body['ingest']['done']}/{body['ingest']['total']}, "
                f"dense {body['dense']['status']} {body['dense']['done']}/{body['dense']['total']}"
            )
        listed = api.get(f"/v1/plugin/custom/plugins/{plugin}/files", params={"limit": 100}).json()["data"]
        statuses = Counter(item["status"] for item in listed)
        outcome.details.append(f"documents: {dict(statuses)}")
        missing = []
        for item in listed:
            if item["status"] != "processed":
                continue
            marker = f"marker{int(item['external_id'][7:9]):02d}zq"
            hits = api.post("/v1/plugin/search", json={"plugin": plugin, "query": marker, "top_k": 1}).json()["data"]
            if not hits or hits[0]["doc_id"] != item["external_id"] or not item["chunk_count"]:
                missing.append(item["external_id"])
        if missing or statuses.get("processed", 0) + statuses.get("failed", 0) != docs:
            outcome.passed = False
        outcome.details.append(f"processed documents not found by their marker: {missing or 'none'}")
    return outcome


def _training_processes(platform: Platform) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    command = handle.read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "workers.finetune.train" in command and str(platform.workdir) in command:
                found.append(int(entry.name))
    return found


def fault_training(platform: Platform, key: str, *, deadline_s: float) -> Outcome:
    outcome = Outcome("jobs worker SIGKILL mid-training", passed=True)
    data = "\n".join(json.dumps({"instruction": q, "input": "", "output": a}) for q, a in PAIRS).encode()
    # The smallest real run: a few steps of two examples, a checkpoint after each.
    hyperparameters = {
        "max_steps": 4,
        "n_epochs": 100,
        "learning_rate": 2e-3,
        "batch_size": 2,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "eval": False,
        "validation_split": 0,
        "save_steps": 1,
        "logging_steps": 1,
        "max_length": 64,
    }
    with _api(platform, key) as api:
        response = api.post(
            "/v1/finetunes",
            data={"name": "faults", "method": "lora", "hyperparameters": json.dumps(hyperparameters)},
            files={"file": ("data.jsonl", io.BytesIO(data))},
        )
        assert response.status_code in (200, 201), response.text
        job = response.json()["finetune_id"]

        def detail() -> dict[str, object]:
            return api.get(f"/v1/finetunes/{job}").json()

        checkpointed = _wait(
            lambda: (
                (d := detail())["status"] == "running"
                and api.get(f"/v1/fine_tuning/jobs/{job}/checkpoints").json()["data"]
                and d
            ),
            timeout_s=deadline_s * 2,
            interval_s=1,
        )
        if not checkpointed:
            return Outcome(outcome.fault, False, [f"no checkpoint within {deadline_s:.0f} s: {detail()['status']}"])
        assert isinstance(checkpointed, dict)
        step = (checkpointed.get("progress") or {}).get("step")
        trainers = _training_processes(platform)
        platform.kill_jobs_worker()
        outcome.details.append(f"killed at step {step} ({len(trainers)} training process(es) running)")
        time.sleep(2)
        platform.start_jobs_worker()
        orphans = _wait(lambda: not _training_processes(platform), timeout_s=30)
        if not orphans:
            outcome.passed = False
            outcome.details.append(f"training process(es) outlived the worker: {_training_processes(platform)}")
        else:
            outcome.details.append("no training process outlived the worker")
        began = time.monotonic()
        ended = _wait(
            lambda: (d := detail())["status"] in ("succeeded", "failed", "cancelled") and d,
            timeout_s=deadline_s,
            interval_s=2,
        )
        if not ended:
            outcome.passed = False
            outcome.details.append(f"STUCK: still {detail()['status']} {deadline_s:.0f} s after the restart")
            return outcome
        assert isinstance(ended, dict)
        error = ended.get("error")
        outcome.details.append(
            f"{ended['status']} {time.monotonic() - began:.0f} s after the restart, error "
            f"{error.get('code') if isinstance(error, dict) else error}"
        )
        if ended["status"] == "failed":
            if not error:
                outcome.passed = False
            resumed = api.post(f"/v1/finetunes/{job}/resume")
            outcome.details.append(f"resume: {resumed.status_code}")
            final = _wait(
                lambda: (d := detail())["status"] in ("succeeded", "failed", "cancelled") and d,
                timeout_s=deadline_s * 2,
                interval_s=2,
            )
            if not final or final["status"] != "succeeded":  # type: ignore[index]
                outcome.passed = False
                outcome.details.append(f"after resume: {final and final['status']}")  # type: ignore[index]
                return outcome
        events = [
            e["message"] for e in api.get(f"/v1/fine_tuning/jobs/{job}/events", params={"limit": 100}).json()["data"]
        ]
        resumed_from = [m for m in events if "resumed from" in m]
        outcome.details.append(f"succeeded; {resumed_from[0] if resumed_from else 'NOT resumed from a checkpoint'}")
        outcome.passed = outcome.passed and bool(resumed_from)
    return outcome


class LightLoad:
    """Two clients (chat stream, chat, embeddings in turn) recording every request's outcome and duration."""

    def __init__(self, platform: Platform, key: str) -> None:
        self.platform, self.key = platform, key
        self.results: list[tuple[float, str, str, float]] = []  # (start, kind, outcome, elapsed)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(2)]

    def _one(self, api: httpx.Client, kind: str) -> str:
        chat = {
            "model": "smollm2-135m-instruct",
            "messages": [{"role": "user", "content": "Name three colors."}],
            "temperature": 0,
            "max_tokens": 8,
        }
        if kind == "embeddings":
            response = api.post("/v1/embeddings", json={"model": "multilingual-e5-small", "input": "colors"})
        elif kind == "stream":
            with api.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as response:
                text = "\n".join(response.iter_lines())
            if response.status_code == 200:
                if "[DONE]" not in text:
                    return f"stream cut: {text[-120:]}"
                # An error after the first chunk ends the stream with an error event (then [DONE]).
                return "ok" if '"error"' not in text else f"error event {_stream_error_code(text)}"
            return f"{response.status_code} {_code(text)}"
        else:
            response = api.post("/v1/chat/completions", json=chat)
        if response.status_code == 200:
            return "ok"
        retry = "" if response.status_code != 503 or "retry-after" in response.headers else " without Retry-After"
        return f"{response.status_code} {_code(response.text)}{retry}"

    def _client(self, index: int) -> None:
        kinds = ["stream", "chat", "embeddings"]
        with _api(self.platform, self.key) as api:
            turn = index
            while not self._stop.is_set():
                kind, start = kinds[turn % 3], time.monotonic()
                try:
                    result = self._one(api, kind)
                except httpx.TimeoutException:
                    result = "client timeout"
                except httpx.HTTPError as exc:
                    result = type(exc).__name__
                self.results.append((start, kind, result, time.monotonic() - start))
                turn += 1
                if result != "ok":
                    time.sleep(0.5)

    def __enter__(self) -> LightLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT_S + 10)


def _stream_error_code(text: str) -> str:
    events = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: {")]
    return _code(events[-1]) if events else "none"


def _code(text: str) -> str:
    try:
        return str(json.loads(text)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "NOT JSON: " + text[:60].replace("\n", " ")


def fault_restart(platform: Platform, key: str, *, name: str, restart: object, settle_s: float = 20) -> Outcome:
    outcome = Outcome(f"{name} restarted under light load", passed=True)
    with LightLoad(platform, key) as load:
        time.sleep(settle_s)
        fault_at = time.monotonic()
        restart()  # type: ignore[operator]
        back_at = time.monotonic()
        recovered = _wait(
            lambda: any(start > back_at and result == "ok" for start, _, result, _ in load.results),
            timeout_s=120,
            interval_s=0.5,
        )
        time.sleep(settle_s)
    outcome.details.append(
        f"down for {back_at - fault_at:.1f} s; first success "
        + (
            f"{min(s for s, _, r, _ in load.results if s > back_at and r == 'ok') - back_at:.1f} s after it was back"
            if recovered
            else "NEVER (120 s)"
        )
    )
    results = Counter(result if result == "ok" else f"{kind} {result}" for _, kind, result, _ in load.results)
    outcome.details.append(f"{len(load.results)} requests: {dict(results)}")
    slowest = max(elapsed for *_, elapsed in load.results)
    outcome.details.append(f"slowest request {slowest:.1f} s (client timeout {CLIENT_TIMEOUT_S} s)")
    bad = [
        r
        for _, _, r, _ in load.results
        if r == "client timeout" or r.startswith("500") or "NOT JSON" in r or "cut" in r or "without" in r
    ]
    if bad or not recovered:
        outcome.passed = False
    try:
        platform.wait_ready(timeout_s=60)
        outcome.details.append("readyz 200 with both workers after it")
    except RuntimeError as exc:
        outcome.passed = False
        outcome.details.append(str(exc)[:200])
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20)
    parser.add_argument("--deadline", type=float, default=300, help="seconds a job may take to settle after a fault")
    parser.add_argument("--only", default="ingest,training,redis,postgres")
    parser.add_argument("--keep", action="store_true", help="keep the platform's logs")
    args = parser.parse_args()
    only = args.only.split(",")
    outcomes: list[Outcome] = []
    started = time.monotonic()
    with stack(rate_limits=[10**6], env=ENV, keep=args.keep) as (platform, postgres, redis, (key,)):
        print(
            f"platform ready in {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.2f}", flush=True
        )
        steps = {
            "ingest": lambda: fault_ingest(platform, key, docs=args.docs, deadline_s=args.deadline),
            "training": lambda: fault_training(platform, key, deadline_s=args.deadline),
            "redis": lambda: fault_restart(platform, key, name="Redis", restart=lambda: _redis_restart(redis)),
            "postgres": lambda: fault_restart(
                platform, key, name="PostgreSQL", restart=lambda: _postgres_restart(postgres)
            ),
        }
        for name in only:
            began = time.monotonic()
            try:
                outcome = steps[name]()
            except httpx.TransportError as exc:
                outcome = Outcome(name, False, [f"{type(exc).__name__}: {exc}; exited: {platform.exited()}"])
            outcome.details.append(f"({time.monotonic() - began:.0f} s)")
            outcomes.append(outcome)
            print(f"{'PASS' if outcome.passed else 'FAIL'}  {outcome.fault}", flush=True)
    print(f"\n{'fault':42s} result  details   (2-core machine, load average {os.getloadavg()[0]:.2f})")
    for outcome in outcomes:
        print(f"{outcome.fault:42s} {'PASS' if outcome.passed else 'FAIL':6s}  {outcome.details[0]}")
        for line in outcome.details[1:]:
            print(f"{'':50s}{line}")
    print(f"total {time.monotonic() - started:.0f} s")
    if not all(outcome.passed for outcome in outcomes):
        sys.exit(1)


def _redis_restart(redis: Redis) -> None:
    redis.restart(down_s=3)


def _postgres_restart(postgres: Postgres) -> None:
    try:
        postgres.restart(down_s=3)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"pg_ctl failed: {exc}") from exc


if __name__ == "__main__":
    main()
