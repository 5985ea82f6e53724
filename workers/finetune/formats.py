"""Record formats, detected per file from the first recognisable record, and their normalisation.

* ``alpaca`` (TigerBot's own format): ``{instruction, input?, output, system?, history?: [[q, a], ...]}``; the
  user turn is ``instruction`` followed by ``input`` on a new line when there is one.
* ``sharegpt``: ``{conversations: [{from, value}], system?, tools?}``. ``from`` is mapped: human/user -> user,
  gpt/assistant/chatgpt/model/bard/bing -> assistant, system -> system (first turn only). Tool turns are
  KEPT as real tool calls so they train in the serving prompt format: ``function_call`` (value: JSON ``{name,
  arguments}`` or a list of them) becomes an assistant message with ``tool_calls``; ``observation``/``tool``/
  ``function`` becomes a ``tool`` message answering it; ``tools`` (JSON text or list) becomes the tool list.
  A ``function_call`` whose value is not JSON rejects that record.
* ``openai``: ``{messages: [{role, content, tool_calls?, tool_call_id?, name?}], tools?}`` with role
  system/developer/user/assistant/tool/function; ``content`` may be a string or a list of text parts
  (``{"type": "text", "text"|"value": ...}``); any other part type (images, audio) rejects the record.
  Per-message extras such as ``loss_weight`` are ignored: every assistant turn is trained on.

A conversation must start with a user turn (after an optional system prompt), alternate user -> assistant, put
tool results only after an assistant tool call, and end with an assistant turn. Problems raise RecordError
naming the field, e.g. ``conversations[3].from``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from workers.finetune.conversation import Conversation

RecordFormat = Literal["alpaca", "sharegpt", "openai"]

_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "model": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "system": "system",
    "function_call": "tool_call",
    "tool_call": "tool_call",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}
_OPENAI_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}


class RecordError(Exception):
    """One record is malformed; ``field`` is a path into the record such as ``messages[2].content``."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def detect_record_format(value: Any) -> RecordFormat | None:
    if not isinstance(value, dict):
        return None
    if "messages" in value:
        return "openai"
    if "conversations" in value:
        return "sharegpt"
    if "instruction" in value or "output" in value:
        return "alpaca"
    return None


def normalise_record(value: Any, record_format: RecordFormat) -> Conversation:
    if not isinstance(value, dict):
        raise RecordError(None, "record must be a JSON object")
    if record_format == "alpaca":
        return _alpaca(value)
    if record_format == "sharegpt":
        return _sharegpt(value)
    return _openai(value)


def _string(record: dict[str, Any], key: str, *, required: bool) -> str:
    if key not in record or record[key] is None:
        if required:
            raise RecordError(key, "required field is missing")
        return ""
    if not isinstance(record[key], str):
        raise RecordError(key, f"must be a string, got {type(record[key]).__name__}")
    return record[key]


def _optional_system(record: dict[str, Any]) -> str | None:
    return _string(record, "system", required=False) or None


def _alpaca(record: dict[str, Any]) -> Conversation:
    instruction = _string(record, "instruction", required=True)
    extra = _string(record, "input", required=False)
    output = _string(record, "output", required=True)
    messages: list[dict[str, Any]] = []
    history = record.get("history") or []
    if not isinstance(history, list):
        raise RecordError("history", "must be a list of [question, answer] pairs")
    for index, pair in enumerate(history):
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise RecordError(f"history[{index}]", "must be a [question, answer] pair of strings")
        messages += [_message("user", pair[0]), _message("assistant", pair[1])]
    prompt = f"{instruction}\n{extra}" if instruction and extra else instruction or extra
    if not prompt.strip():
        raise RecordError("instruction", "instruction and input are both empty")
    messages += [_message("user", prompt), _message("assistant", output)]
    return Conversation(messages=messages, system=_optional_system(record))


def _message(role: str, content: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **{key: value for key, value in extra.items() if value}}


def _tool_call(value: Any, field: str, default_id: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        raise RecordError(field, "a tool call needs a string 'name'")
    arguments = value.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {"id": str(value.get("id") or default_id), "name": value["name"], "arguments": arguments}


def _tools(record: dict[str, Any]) -> list[dict[str, Any]]:
    tools = record.get("tools")
    if tools in (None, "", []):
        return []
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as exc:
            raise RecordError("tools", f"not valid JSON: {exc.msg}") from exc
    if not isinstance(tools, list):
        raise RecordError("tools", "must be a list of function definitions")
    specs = []
    for index, tool in enumerate(tools):
        function = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise RecordError(f"tools[{index}]", "a tool needs a string 'name'")
        parameters = function.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise RecordError(f"tools[{index}].parameters", "must be a JSON schema object")
        description = function.get("description") or ""
        specs.append({"name": function["name"], "description": str(description), "parameters": parameters})
    return specs


def _sharegpt(record: dict[str, Any]) -> Conversation:
    turns = record["conversations"]
    if not isinstance(turns, list) or not turns:
        raise RecordError("conversations", "must be a non-empty list of turns")
    system = _optional_system(record)
    messages: list[tuple[str, dict[str, Any]]] = []
    for index, turn in enumerate(turns):
        field = f"conversations[{index}]"
        if not isinstance(turn, dict):
            raise RecordError(field, "a turn must be an object with 'from' and 'value'")
        speaker = turn.get("from", turn.get("role"))
        role = _SHAREGPT_ROLES.get(speaker) if isinstance(speaker, str) else None
        if role is None:
            raise RecordError(f"{field}.from", f"unknown speaker {speaker!r}")
        content = turn.get("value", turn.get("content"))
        if not isinstance(content, str):
            raise RecordError(f"{field}.value", "must be a string")
        if role == "system":
            if index != 0:
                raise RecordError(f"{field}.from", "a system turn may only come first")
            system = content or system
        elif role == "tool_call":
            messages.append((field, _message("assistant", "", tool_calls=_parse_call_text(content, field, index))))
        else:
            messages.append((field, _message(role, content)))
    return Conversation(messages=_checked_turns(messages, "from"), system=system, tools=_tools(record))


def _parse_call_text(content: str, field: str, turn: int) -> list[dict[str, Any]]:
    try:
        calls = json.loads(content)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{field}.value", f"a function_call value must be JSON: {exc.msg}") from exc
    calls = calls if isinstance(calls, list) else [calls]
    return [_tool_call(call, f"{field}.value", f"call_{turn}_{k}") for k, call in enumerate(calls)]


def _openai(record: dict[str, Any]) -> Conversation:
    items = record["messages"]
    if not isinstance(items, list) or not items:
        raise RecordError("messages", "must be a non-empty list of messages")
    system: str | None = None
    messages: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(items):
        field = f"messages[{index}]"
        if not isinstance(item, dict):
            raise RecordError(field, "a message must be an object with 'role' and 'content'")
        role_name = item.get("role")
        role = _OPENAI_ROLES.get(role_name) if isinstance(role_name, str) else None
        if role is None:
            raise RecordError(f"{field}.role", f"unknown role {item.get('role')!r}")
        content = _openai_content(item.get("content"), f"{field}.content")
        if role == "system":
            if index != 0:
                raise RecordError(f"{field}.role", "a system message may only come first")
            system = content or None
            continue
        calls = item.get("tool_calls") or []
        if calls and role != "assistant":
            raise RecordError(f"{field}.tool_calls", "only assistant messages may carry tool calls")
        if not isinstance(calls, list):
            raise RecordError(f"{field}.tool_calls", "must be a list")
        tool_calls = [
            _openai_call(call, f"{field}.tool_calls[{k}]", f"call_{index}_{k}") for k, call in enumerate(calls)
        ]
        extra = {"tool_calls": tool_calls, "tool_call_id": item.get("tool_call_id"), "name": item.get("name")}
        messages.append((field, _message(role, content, **{k: v for k, v in extra.items() if v})))
    return Conversation(messages=_checked_turns(messages, "role"), system=system, tools=_tools(record))


def _openai_call(call: Any, field: str, default_id: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        raise RecordError(field, "a tool call needs a 'function' object")
    return _tool_call({**function, "id": call.get("id")}, field, default_id)


def _openai_content(content: Any, field: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise RecordError(field, "must be a string or a list of text parts")
    texts = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text":
            raise RecordError(f"{field}[{index}]", f"only text parts are supported, got {kind!r}")
        text = part.get("text", part.get("value"))
        if not isinstance(text, str):
            raise RecordError(f"{field}[{index}]", "a text part needs a string 'text'")
        texts.append(text)
    return "\n".join(texts)


def _checked_turns(messages: list[tuple[str, dict[str, Any]]], role_key: str) -> list[dict[str, Any]]:
    """Check turn order, give tool results the id of the call they answer, and return the bare messages.

    Consecutive user turns are allowed (the prompt builder joins them); consecutive answers are not.
    """
    if not messages:
        raise RecordError(None, "the conversation has no user or assistant turn")
    pending_calls: list[str] = []
    previous: dict[str, Any] | None = None
    for field, message in messages:
        role = message["role"]
        if previous is None:
            allowed = {"user"}
        elif previous["role"] == "user":
            allowed = {"user", "assistant"}
        elif previous["role"] == "assistant":
            allowed = {"tool"} if previous.get("tool_calls") else {"user"}
        else:
            allowed = {"tool", "assistant"}
        if role not in allowed:
            expected = " or ".join(sorted(allowed))
            raise RecordError(f"{field}.{role_key}", f"expected a {expected} turn here, got {role}")
        if role == "assistant":
            pending_calls = [call["id"] for call in message.get("tool_calls", ())]
        elif role == "tool" and "tool_call_id" not in message and pending_calls:
            message["tool_call_id"] = pending_calls.pop(0)
        previous = message
    last_field, last = messages[-1]
    if last["role"] != "assistant":
        raise RecordError(f"{last_field}.{role_key}", "the conversation must end with an assistant turn")
    return [message for _, message in messages]
