"""Tool prompt rendering and the tool-call parser, on literal strings."""

from __future__ import annotations

import pytest

from tests.chat.conftest import WEATHER_CALL, WEATHER_QUESTION, WEATHER_RESULT, WEATHER_TOOL
from workers.runtime.specs import ChatMessage, ToolSpec
from workers.runtime.tools import parse_tool_calls, render_tool_messages, tools_system_block

TOOLS = [WEATHER_TOOL, ToolSpec(name="get_time", parameters={"type": "object", "properties": {}})]


def test_valid_call_is_parsed_and_content_kept() -> None:
    text = 'Let me check.\n<tool_call>{"name": "get_weather", "arguments": {"city": "北京"}}</tool_call>'
    content, calls = parse_tool_calls(text=text, tools=TOOLS)
    assert content == "Let me check."
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", '{"city": "北京"}')]
    assert calls[0].id.startswith("call_") and len(calls[0].id) > 10


def test_several_calls_and_string_arguments() -> None:
    text = (
        '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>\n'
        '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}</tool_call>'
    )
    content, calls = parse_tool_calls(text=text, tools=TOOLS)
    assert content == ""
    assert [(c.name, c.arguments) for c in calls] == [("get_time", "{}"), ("get_weather", '{"city": "Paris"}')]
    assert calls[0].id != calls[1].id


@pytest.mark.parametrize(
    "text",
    [
        "The weather is fine.",
        '<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>',
        '<tool_call>{"name": "launch_rocket", "arguments": {}}</tool_call>',
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '<tool_call>{"name": "get_weather", "arguments": ["Paris"]}</tool_call>',
        '<tool_call>["get_weather"]</tool_call>',
        '<tool_call>{"name": "get_time", "arguments": {}}</tool_call><tool_call>oops</tool_call>',
    ],
)
def test_anything_invalid_falls_back_to_plain_content(text: str) -> None:
    assert parse_tool_calls(text=text, tools=TOOLS) == (text, [])


def test_tools_calls_and_results_are_rendered_as_plain_turns() -> None:
    messages = [ChatMessage(role="system", content="Be brief."), WEATHER_QUESTION, WEATHER_CALL, WEATHER_RESULT]
    rendered = render_tool_messages(messages=messages, tools=[WEATHER_TOOL])
    assert rendered == [
        ChatMessage(role="system", content="Be brief.\n\n" + tools_system_block(tools=[WEATHER_TOOL])),
        WEATHER_QUESTION,
        ChatMessage(
            role="assistant",
            content='<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
        ),
        ChatMessage(
            role="user",
            content='<tool_response>{"name": "get_weather", "content": "{\\"temperature\\": 21}"}</tool_response>',
        ),
    ]


def test_tools_block_lists_schemas_and_call_syntax() -> None:
    block = tools_system_block(tools=[WEATHER_TOOL])
    assert block == (
        "# Tools\n\n"
        "You may call one or more functions to assist with the user query. The functions are:\n"
        '{"name": "get_weather", "description": "Current weather for a city", "parameters": {"type": "object", '
        '"properties": {"city": {"type": "string"}}, "required": ["city"]}}\n\n'
        "To call functions, reply with one line per call, each exactly in this form and nothing else:\n"
        '<tool_call>{"name": <function-name>, "arguments": <arguments-json-object>}</tool_call>'
    )
    assert render_tool_messages(messages=[WEATHER_QUESTION], tools=[WEATHER_TOOL])[0] == ChatMessage(
        role="system", content=block
    )
