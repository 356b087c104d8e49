"""`Message` and `ToolCall`: what a model receives, shared by the renderer and the model clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue

__all__ = ["Message", "ToolCall"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call inside an assistant message (the `messages` format)."""

    id: str
    """The call id: the `tool_call` event's id."""
    name: str
    """The tool's intent name."""
    arguments: str
    """The arguments as a JSON object string."""


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message, exactly as it goes to the model."""

    role: Literal["system", "user", "assistant", "tool"]
    """Who speaks."""
    content: str
    """The text."""
    tool_calls: tuple[ToolCall, ...] = ()
    """Tool calls an assistant message makes."""
    tool_call_id: str | None = None
    """For a `tool` message, the call it answers."""

    def to_dict(self) -> dict[str, JsonValue]:
        """The OpenAI chat-completions shape of this message."""
        out: dict[str, JsonValue] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out
