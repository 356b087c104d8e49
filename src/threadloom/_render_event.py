"""One event as the model reads it in the xml and yaml formats: its tag, its body, and the text of both.

Fencing (docs/03): a tag is an event type (snake_case, which cannot hold markup) or a tool's name
that is a valid tag and not one of threadloom's; every body is YAML written by `_yaml`, and in the
xml format each `<` in a body is written `&lt;` (and each `&` that would read as `&lt;` or `&amp;`
as `&amp;`), so no value, key or name can open or close a tag of the context.
"""

from __future__ import annotations

import functools
import re
from typing import Literal

from pydantic import JsonValue

from ._yaml import dump_yaml, flat_mapping
from .events import (
    APPROVAL,
    DONE_FOR_NOW,
    ERROR,
    FAILED,
    HUMAN_RESPONSE,
    REQUEST_HUMAN_INPUT,
    REQUEST_MORE_INFORMATION,
    TOOL_CALL,
    TOOL_RESPONSE,
    TOOL_STARTED,
    USER_INPUT,
    WAIT_UNTIL,
)

__all__ = ["BOOKKEEPING_KEYS", "TextFormat", "body", "event_text", "unescape_xml"]

TextFormat = Literal["xml", "yaml"]

BOOKKEEPING_KEYS: dict[str, frozenset[str]] = {
    REQUEST_HUMAN_INPUT: frozenset({"reason", "call_id", "request_id"}),
    REQUEST_MORE_INFORMATION: frozenset({"call_id", "request_id"}),
    DONE_FOR_NOW: frozenset({"call_id"}),
    WAIT_UNTIL: frozenset({"call_id"}),
    HUMAN_RESPONSE: frozenset({"request_id", "by"}),  # `by`: who answered, for the operator
    FAILED: frozenset({"reason", "source", "error_type"}),
}
"""Per type of threadloom's own events (beyond those `body` shapes itself), the keys only machines read.

Every other event type is outside input: each key of its data reaches the model."""

# Tags of threadloom's own events: a tool named like one is shown as `<tool_call>`, never mistaken for it.
_OWN_TAGS = frozenset(
    {
        USER_INPUT,
        TOOL_CALL,
        TOOL_STARTED,
        APPROVAL,
        TOOL_RESPONSE,
        ERROR,
        HUMAN_RESPONSE,
        FAILED,
        DONE_FOR_NOW,
        REQUEST_HUMAN_INPUT,
        REQUEST_MORE_INFORMATION,
        WAIT_UNTIL,
        "wake_up",
    }
)
_TAG = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPE = re.compile(r"<|&(?=lt;|amp;)")
_UNESCAPE = re.compile(r"&(lt|amp);")
_DICT_OR_NONE = (dict, type(None))  # a tuple: `dict | None` would build a union at every call


def body(type_: str, value: JsonValue) -> tuple[str, JsonValue]:
    """The tag and the body the xml and yaml formats show for an event of type `type_` with data `value`."""
    data: dict[str, JsonValue] = value if isinstance(value, dict) else {}
    match type_:
        case "tool_call":
            intent, arguments = data.get("intent"), data.get("arguments")
            if isinstance(intent, str) and _is_tag(intent) and isinstance(arguments, _DICT_OR_NONE):
                return intent, arguments or {}  # the tool's name says it was called: `<name_result>` answers
            return TOOL_CALL, {"intent": intent, "arguments": arguments}
        case "tool_response":
            intent = data.get("intent")
            if isinstance(intent, str) and _is_tag(intent):
                return f"{intent}_result", data.get("result")
            return TOOL_RESPONSE, {"intent": intent, "result": data.get("result")}
        case "error" if data.get("source") == "model":
            return ERROR, f"your last answer could not be used: {data.get('message')}"
        case "error":
            return ERROR, {"intent": data.get("intent"), "message": data.get("message")}
        case "approval" if data.get("approved") is True:
            edits = data.get("edits")
            return APPROVAL, {"approved": True, **({"edits": edits} if edits else {})}
        case "approval":
            return APPROVAL, {"approved": False, "feedback": data.get("feedback")}
        case "human_response" if isinstance(value, dict) and set(data) <= {"request_id", "text", "by"}:
            return HUMAN_RESPONSE, data.get("text")
        case _ if isinstance(value, dict) and type_ in BOOKKEEPING_KEYS:
            internal = BOOKKEEPING_KEYS[type_]
            return type_, {k: v for k, v in data.items() if k not in internal}
        case _:
            return type_, value


def event_text(type_: str, data: JsonValue, format: TextFormat) -> str:
    """The default rendering of an event with this type and data (the caller need not build the event)."""
    tag, shown = body(type_, data)
    if format == "yaml":
        # One item of the thread's list; not `dump_yaml([...])`, which could make a one-row table of it.
        return "- " + dump_yaml({tag: shown}, indent=2, tables=True)[2:]
    if type(shown) is dict and (flat := flat_mapping(shown, True)) is not None:
        text = flat  # most bodies: a mapping of one-line scalars
    elif isinstance(shown, str) and ('"' in shown or "\\" in shown) and _one_line_block_ok(shown):
        text = "|-\n  " + shown  # a literal block reads as it is: no JSON escapes for the model to undo
    else:
        text = dump_yaml(shown, tables=True)
    if "<" in text or "&" in text:
        text = _ESCAPE.sub(_escaped, text)
    if "\n" in text:
        return f"<{tag}>\n{text}\n</{tag}>"
    return f"<{tag}>{text}</{tag}>"


def _one_line_block_ok(text: str) -> bool:
    return "\n" not in text and text.isprintable() and text == text.strip() and bool(text)


def _escaped(match: re.Match[str]) -> str:
    return "&lt;" if match.group() == "<" else "&amp;"


def unescape_xml(text: str) -> str:
    """A body's YAML as written before `event_text` escaped it for the xml format."""
    return _UNESCAPE.sub(lambda m: "<" if m.group(1) == "lt" else "&", text)


@functools.lru_cache(maxsize=1024)
def _is_tag(name: str) -> bool:
    """Whether a tool call can be shown under the tool's name: a valid XML tag, not an event's, not a result's."""
    return (
        _TAG.fullmatch(name) is not None
        and not name.lower().startswith("xml")
        and name not in _OWN_TAGS
        and not name.endswith("_result")
    )
