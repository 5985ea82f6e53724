"""The internal conversation form every dataset format is normalised to (and train/validation JSONL holds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workers.runtime.specs import ChatMessage, ToolSpec


@dataclass
class Conversation:
    """``messages`` are ChatMessage-shaped dicts (role user/assistant/tool, content, optional tool_calls and
    tool_call_id); the system prompt is kept apart so templates can place it; ``tools`` are ToolSpec dicts."""

    messages: list[dict[str, Any]]
    system: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"messages": self.messages, "system": self.system}
        if self.tools:
            data["tools"] = self.tools
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        return cls(messages=list(data["messages"]), system=data.get("system"), tools=list(data.get("tools", ())))

    def chat_messages(self) -> list[ChatMessage]:
        """The conversation as runtime ChatMessages, system prompt first."""
        head = [ChatMessage(role="system", content=self.system)] if self.system else []
        return head + [ChatMessage.from_dict(message) for message in self.messages]

    def tool_specs(self) -> list[ToolSpec]:
        return [ToolSpec.from_dict(tool) for tool in self.tools]

    def prompt_text(self) -> str:
        """Everything the model reads before its final answer, as plain text (for dedupe and statistics)."""
        parts = [self.system or ""]
        parts += [_message_text(message) for message in self.messages[:-1]]
        return "\n".join(part for part in parts if part)

    def response_text(self) -> str:
        """The final assistant answer, as plain text."""
        return _message_text(self.messages[-1])


def _message_text(message: dict[str, Any]) -> str:
    calls = " ".join(f"{call['name']} {call['arguments']}" for call in message.get("tool_calls", ()))
    return " ".join(part for part in (message.get("content", ""), calls) if part)
