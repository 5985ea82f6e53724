"""Function calling for models without a native tool API: how tools, calls and results appear in the prompt,
and how calls are read back out of generated text.

Prompt format (what ``render_tool_messages`` produces, and what models are fine-tuned on):

* The tool list becomes a block appended to the system prompt (or is the system prompt when there is none)::

      # Tools

      You may call one or more functions to assist with the user query. The functions are:
      {"name": "get_weather", "description": "...", "parameters": {...JSON schema...}}

      To call functions, reply with one line per call, each exactly in this form and nothing else:
      <tool_call>{"name": <function-name>, "arguments": <arguments-json-object>}</tool_call>

* An assistant message with ``tool_calls`` becomes its content followed by one ``<tool_call>...</tool_call>``
  line per call, i.e. exactly the text the model is asked to produce.
* A ``role: tool`` message becomes a *user* turn (the model reads the result as input), one line per result::

      <tool_response>{"name": "get_weather", "content": "<the tool's output>"}</tool_response>

  The name comes from the message or, failing that, from the assistant call its ``tool_call_id`` answers;
  consecutive tool results are merged into one user turn by the prompt builder.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from typing import Any

from workers.runtime.specs import ChatMessage, ToolCall, ToolSpec

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
_TOOL_CALL_RE = re.compile(re.escape(TOOL_CALL_OPEN) + r"(.*?)" + re.escape(TOOL_CALL_CLOSE), re.DOTALL)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def tools_system_block(*, tools: Sequence[ToolSpec]) -> str:
    """The system-prompt text that describes ``tools`` and the call syntax."""
    schemas = "\n".join(
        _dumps({"name": tool.name, "description": tool.description, "parameters": tool.parameters}) for tool in tools
    )
    return (
        "# Tools\n\n"
        "You may call one or more functions to assist with the user query. The functions are:\n"
        f"{schemas}\n\n"
        "To call functions, reply with one line per call, each exactly in this form and nothing else:\n"
        f'{TOOL_CALL_OPEN}{{"name": <function-name>, "arguments": <arguments-json-object>}}{TOOL_CALL_CLOSE}'
    )


def _render_call(call: ToolCall) -> str:
    try:
        arguments: Any = json.loads(call.arguments)
    except json.JSONDecodeError:
        arguments = call.arguments
    return f"{TOOL_CALL_OPEN}{_dumps({'name': call.name, 'arguments': arguments})}{TOOL_CALL_CLOSE}"


def render_tool_messages(*, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> list[ChatMessage]:
    """``messages`` with tools, tool calls and tool results written as plain system/user/assistant text."""
    call_names = {call.id: call.name for message in messages for call in message.tool_calls}
    rendered: list[ChatMessage] = []
    for message in messages:
        if message.role == "tool":
            name = message.name or call_names.get(message.tool_call_id, "")
            body = _dumps({"name": name, "content": message.content})
            rendered.append(ChatMessage(role="user", content=f"<tool_response>{body}</tool_response>"))
        elif message.tool_calls:
            lines = [message.content] if message.content else []
            lines += [_render_call(call) for call in message.tool_calls]
            rendered.append(ChatMessage(role="assistant", content="\n".join(lines)))
        else:
            rendered.append(message)
    if not tools:
        return rendered
    block = tools_system_block(tools=tools)
    if rendered and rendered[0].role == "system":
        return [ChatMessage(role="system", content=f"{rendered[0].content}\n\n{block}"), *rendered[1:]]
    return [ChatMessage(role="system", content=block), *rendered]


def _parse_call(body: str, known: set[str]) -> ToolCall | None:
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("name") not in known:
        return None
    arguments = data.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(id=f"call_{secrets.token_hex(12)}", name=data["name"], arguments=_dumps(arguments))


def parse_tool_calls(*, text: str, tools: Sequence[ToolSpec]) -> tuple[str, list[ToolCall]]:
    """Split generated ``text`` into (content, tool calls).

    Any malformed call, unknown function or unclosed tag makes the whole text plain content, so a confused
    model degrades to a normal answer.
    """
    if TOOL_CALL_OPEN not in text:
        return text, []
    known = {tool.name for tool in tools}
    calls = [_parse_call(body, known) for body in _TOOL_CALL_RE.findall(text)]
    content = _TOOL_CALL_RE.sub("", text)
    if not calls or None in calls or TOOL_CALL_OPEN in content:
        return text, []
    return content.strip(), [call for call in calls if call is not None]
