"""The engine facade with local models: tool calling round trip and token counting."""

from __future__ import annotations

from pathlib import Path

from tests.chat.conftest import (
    WEATHER_ANSWER,
    WEATHER_CALL,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    WEATHER_TOOL,
    local_spec,
)
from workers.runtime import engine
from workers.runtime.specs import GenerationRequest, SamplingParams

GREEDY = SamplingParams(temperature=0)


def test_tool_call_round_trip(tool_model: Path) -> None:
    spec = local_spec(tool_model, max_new_tokens=64)
    call = engine.generate(
        request=GenerationRequest(spec=spec, messages=[WEATHER_QUESTION], params=GREEDY, tools=[WEATHER_TOOL])
    )
    assert call.finish_reason == "tool_calls"
    assert call.text == ""
    assert [(c.name, c.arguments) for c in call.tool_calls] == [("get_weather", '{"city": "Paris"}')]
    assert call.tool_calls[0].id.startswith("call_")

    history = [WEATHER_QUESTION, WEATHER_CALL, WEATHER_RESULT]
    answer = engine.generate(
        request=GenerationRequest(spec=spec, messages=history, params=GREEDY, tools=[WEATHER_TOOL])
    )
    assert (answer.text, answer.finish_reason, answer.tool_calls) == (WEATHER_ANSWER, "stop", ())


def test_streamed_tool_call_is_not_sent_as_text(tool_model: Path) -> None:
    spec = local_spec(tool_model, max_new_tokens=64)
    chunks = list(
        engine.stream(
            request=GenerationRequest(spec=spec, messages=[WEATHER_QUESTION], params=GREEDY, tools=[WEATHER_TOOL])
        )
    )
    assert "".join(c.delta for c in chunks) == ""
    assert chunks[-1].result is not None
    assert chunks[-1].result.finish_reason == "tool_calls"
    assert [c.name for c in chunks[-1].result.tool_calls] == ["get_weather"]

    history = [WEATHER_QUESTION, WEATHER_CALL, WEATHER_RESULT]
    chunks = list(
        engine.stream(request=GenerationRequest(spec=spec, messages=history, params=GREEDY, tools=[WEATHER_TOOL]))
    )
    assert "".join(c.delta for c in chunks) == WEATHER_ANSWER


def test_a_stream_with_tools_closed_before_its_first_chunk_frees_its_engine_slot(tiny_models) -> None:
    spec = local_spec(tiny_models["tigerbot"], max_new_tokens=2000)
    request = GenerationRequest(spec=spec, messages=[WEATHER_QUESTION], params=GREEDY, tools=[WEATHER_TOOL])
    chunks = engine.stream(request=request)
    live = engine.local_runtime.engine(spec=spec)
    assert live.pending == 1
    chunks.close()  # what a client leaving before the first token comes to
    assert live.pending == 0
