"""One event as standard chat messages (the `messages` format): tool calls answered by `tool` messages."""

from __future__ import annotations

import json
from collections.abc import Mapping

from pydantic import JsonValue

from ._render_event import BOOKKEEPING_KEYS, event_text
from ._yaml import dump_yaml
from .events import Event
from .messages import Message, ToolCall

__all__ = ["event_messages"]

_NO_MESSAGES: tuple[Message, ...] = ()


def event_messages(event: Event) -> tuple[Message, ...]:
    """The messages that stand for `event` (none for an approval: the result that follows says the call ran)."""
    data: dict[str, JsonValue] = event.data if isinstance(event.data, dict) else {}
    match event.type:
        case "tool_call":
            arguments = json.dumps(data.get("arguments") or {}, ensure_ascii=False)
            call = ToolCall(id=event.id, name=str(data.get("intent")), arguments=arguments)
            return (Message("assistant", "", tool_calls=(call,)),)
        case "tool_response":
            return (_tool_message(data, dump_yaml(data.get("result"), tables=True)),)
        case "error" if data.get("source") == "model":
            return (
                Message("assistant", str(data.get("output", ""))),
                Message("user", f"Your last answer could not be used: {data.get('message')}"),
            )
        case "error" if isinstance(data.get("call_id"), str):
            return (_tool_message(data, f"error: {data.get('message')}"),)
        case "approval" if data.get("approved") is not True:
            return (_tool_message(data, f"rejected by a person: {data.get('feedback')}"),)
        case "approval" | "tool_started":
            return _NO_MESSAGES
        case "done_for_now" | "request_human_input" | "request_more_information" | "wait_until":
            internal = BOOKKEEPING_KEYS[event.type]
            intent = {"intent": event.type, **{k: v for k, v in data.items() if k not in internal}}
            return (Message("assistant", json.dumps(intent, ensure_ascii=False)),)
        case "user_input" if isinstance(data.get("text"), str) and len(data) == 1:
            return (Message("user", str(data["text"])),)
        case "human_response" if isinstance(data.get("text"), str) and set(data) <= {"request_id", "text", "by"}:
            return (Message("user", str(data["text"])),)
        case _:
            return (Message("user", event_text(event.type, event.data, "xml")),)


def _tool_message(data: Mapping[str, JsonValue], content: str) -> Message:
    return Message("tool", content, tool_call_id=str(data.get("call_id")))
