"""End-to-end chat latency through the HTTP API ÷ a bare ``model.generate`` of the same prompt, and the
time to first token of a stream.

A tiny Llama (built here, random weights) generates 32 new tokens greedily. The API side is a real gunicorn
server running the platform (embedded mode: the model runs in the web process) called with httpx; the bare side
loads the same checkpoint with transformers in this process and calls ``generate`` on the same prompt ids. The
two alternate, one request each, and the medians are compared. Goal: ratio ≤ 1.10.

    python bench/chat_overhead.py [--runs 30] [--hidden 256] [--layers 4]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import bench_workdir, make_bench_model, platform_server, setup_django

NEW_TOKENS = 32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    workdir = bench_workdir("bench-chat-")
    setup_django()

    import httpx
    import torch
    from django.contrib.auth import get_user_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from apps.accounts.services import api_key_create
    from apps.chat.services import model_endpoint_register
    from workers.runtime.prompts import build_prompt_ids
    from workers.runtime.specs import ChatMessage

    torch.set_num_threads(1)
    path = make_bench_model(workdir / "model", hidden=args.hidden, layers=args.layers)
    model_endpoint_register(name="bench", family="tigerbot", path=str(path), max_new_tokens=NEW_TOKENS)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    key = api_key_create(owner=user, rate_limit_per_minute=10**6).plaintext
    question = "请用三句话介绍一下长江。"

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    prompt = build_prompt_ids(
        family="tigerbot",
        tokenizer=tokenizer,
        messages=[ChatMessage(role="user", content=question)],
        max_input_tokens=2048,
    )
    input_ids = torch.tensor([prompt.input_ids])

    def bare() -> tuple[float, int]:
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=False,
                max_new_tokens=NEW_TOKENS,
                use_cache=True,
                pad_token_id=tokenizer.pad_token_id,
            )
        return time.perf_counter() - start, out.shape[1] - input_ids.shape[1]

    body = {
        "model": "bench",
        "messages": [{"role": "user", "content": question}],
        "temperature": 0,
        "max_tokens": NEW_TOKENS,
    }
    with (
        platform_server(threads=4, env={"OMP_NUM_THREADS": "1"}) as url,
        httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as http,
    ):

        def api() -> tuple[float, int]:
            start = time.perf_counter()
            response = http.post("/v1/chat/completions", json=body)
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            return elapsed, response.json()["usage"]["completion_tokens"]

        def first_token() -> float:
            start = time.perf_counter()
            with http.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
                for line in response.iter_lines():
                    if '"content":' in line and '"content": ""' not in line and '"content":""' not in line:
                        return time.perf_counter() - start
            raise RuntimeError("the stream carried no text")

        api(), bare(), api(), bare()  # load and warm up both
        api_times, bare_times, tokens = [], [], set()
        for _ in range(args.runs):
            elapsed, count = api()
            api_times.append(elapsed)
            tokens.add(count)
            elapsed, count = bare()
            bare_times.append(elapsed)
            tokens.add(count)
        ttft = [first_token() for _ in range(max(5, args.runs // 3))]

    api_ms, bare_ms = statistics.median(api_times) * 1000, statistics.median(bare_times) * 1000
    print(f"model: tiny Llama hidden={args.hidden} layers={args.layers}, new tokens per request: {sorted(tokens)}")
    print(
        f"median latency  API {api_ms:.1f} ms   bare generate {bare_ms:.1f} ms   "
        f"ratio {api_ms / bare_ms:.3f}  (goal <= 1.10)"
    )
    print(f"time to first token (stream): median {statistics.median(ttft) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
