"""The value types cross Celery as JSON: they must survive a round trip and reject nonsense early."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.runtime.specs import (
    ChatMessage,
    Family,
    GenerationRequest,
    GenerationResult,
    ModelSpec,
    SamplingParams,
    StreamChunk,
    StructuredOutput,
    ToolCall,
    ToolSpec,
    infer_family,
)

CALL = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
VALUES = [
    ModelSpec(name="m", family="baichuan2", path="/models/m", rope_scaling={"type": "dynamic", "factor": 2.0}),
    ModelSpec(name="u", family="hf-template", backend="openai-upstream", base_url="http://x/v1", api_key="k"),
    ChatMessage(role="assistant", content="", tool_calls=(CALL,)),
    ChatMessage(role="tool", content="21", tool_call_id="call_1", name="get_weather"),
    SamplingParams(temperature=0, top_k=5, stop=("###", "\n\n"), seed=7, max_new_tokens=9),
    ToolSpec(name="get_weather", description="d", parameters={"type": "object"}),
    GenerationResult(text="", prompt_tokens=3, completion_tokens=4, finish_reason="tool_calls", tool_calls=(CALL,)),
    StreamChunk(delta="", finished=True, result=GenerationResult("hi", 1, 1, "stop")),
    StreamChunk(delta="h"),
    GenerationRequest(
        spec=ModelSpec(name="m", family="tigerbot", path="/models/m"),
        messages=(ChatMessage(role="user", content="Weather?"),),
        params=SamplingParams(structured=StructuredOutput(kind="tool_calls")),
        tools=(ToolSpec(name="get_weather"),),
    ),
    GenerationRequest(
        spec=ModelSpec(name="m", family="tigerbot", path="/models/m"),
        messages=(),
        params=SamplingParams(),
        prompt=[1, 2, 3],
    ),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_json_round_trip(value: object) -> None:
    data = json.loads(json.dumps(value.to_dict()))  # type: ignore[attr-defined]
    assert type(value).from_dict(data) == value  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "make",
    [
        lambda: ModelSpec(name="m", family="gpt5", path="/m"),  # type: ignore[arg-type]
        lambda: ModelSpec(name="m", family="tigerbot"),
        lambda: ModelSpec(name="m", family="tigerbot", backend="openai-upstream"),
        lambda: ModelSpec(name="m", family="tigerbot", path="/m", quantization="2bit"),  # type: ignore[arg-type]
        lambda: ModelSpec(name="m", family="tigerbot", path="/m", dtype="float8"),  # type: ignore[arg-type]
        lambda: ChatMessage(role="robot"),  # type: ignore[arg-type]
        lambda: SamplingParams(temperature=-1),
        lambda: SamplingParams(top_p=0),
        lambda: SamplingParams(stop=("",)),
    ],
)
def test_invalid_values_are_rejected(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_api_key_is_not_in_repr() -> None:
    assert "secret" not in repr(VALUES[1].__class__(**{**VALUES[1].to_dict(), "api_key": "secret"}))


def test_family_is_read_from_the_checkpoint(tiny_models: dict[Family, Path], tmp_path: Path) -> None:
    for family, path in tiny_models.items():
        assert infer_family(path=path) == family
    assert infer_family(path=tmp_path) is None
