"""Server-rendered pages: the Jinja2 templates (autoescaped), the events as a timeline shows them, safe headers.

Every value in a page comes from a thread, and threads hold strangers' input: the templates
escape everything (autoescape is on, and only a fragment rendered by these templates is included as it is), event data is redacted
as the agent's context redacts it, and every page is sent with a Content-Security-Policy that
runs only the package's own script, in no frame, sending no Referer (answer links carry their
token in the URL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from pydantic import JsonValue

from ..events import APPROVAL, HUMAN_RESPONSE, Event, is_bookkeeping
from ..thread import Thread
from ._redaction import Redaction

__all__ = [
    "STATIC",
    "EventView",
    "fragment",
    "page",
    "render",
    "status_label",
    "ticks",
    "timeline",
    "view",
]

_HERE = Path(__file__).parent
STATIC = _HERE / "static"
"""The inbox's CSS and JavaScript, served from the package (no CDN)."""

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,  # every template is HTML: escape every value, whatever the file's name
    undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the page silently
    trim_blocks=True,
    lstrip_blocks=True,
)

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_STATUS_LABELS = {
    "ready": "Running",
    "waiting_approval": "Waiting for approval",
    "waiting_human": "Waiting for an answer",
    "sleeping": "Sleeping",
    "done": "Done",
    "failed": "Failed",
}


def status_label(status: str) -> str:
    """A status in words."""
    return _STATUS_LABELS.get(status, status)


def _ago(moment: datetime, now: datetime | None = None) -> str:
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return "just now" if seconds < 10 else f"{seconds} s"


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when(moment: datetime, now: datetime | None = None) -> str:
    """A time in short: the clock today, the day too before (UTC)."""
    moment = moment.astimezone(UTC)
    same_day = moment.date() == (now or datetime.now(UTC)).date()
    return moment.strftime("%H:%M:%S" if same_day else "%b %d, %H:%M") + " UTC"


def _who(by: str) -> str:
    """Who decided, in words: `key:ops` is the key's name, `answer_link` the answer link."""
    return "the answer link" if by == "answer_link" else by.removeprefix("key:")


def ticks(text: str) -> Markup:
    """`text` escaped, its `backticked` parts as code (waiting reasons name tools so)."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: no code at all
        return Markup.escape(text)
    return Markup("").join(
        Markup("<code>{}</code>").format(p) if i % 2 else Markup.escape(p) for i, p in enumerate(parts)
    )


_env.filters.update(ago=_ago, utc=_utc, when=_when, who=_who, ticks=ticks, status_label=status_label)


def render(template: str, **values: Any) -> Markup:
    """A template rendered (a page or a fragment): markup that another template includes as it is."""
    return Markup(_env.get_template(template).render(**values))


def page(request: Request, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    """A whole page, with the headers every page carries."""
    body = render(template, request=request, **values)
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


def fragment(markup: str) -> HTMLResponse:
    """A piece of a page (fetched by the page's script), with the headers every page carries."""
    return HTMLResponse(markup, headers=_HEADERS)


@dataclass(frozen=True, slots=True)
class EventView:
    """One event as the timeline shows it."""

    event: Event
    """The event."""
    title: str
    """What happened, in a few words."""
    tone: str
    """Its colour: `input`, `model`, `tool`, `person`, `error`, `done` or `note`."""
    summary: str
    """Its gist, in one paragraph."""
    detail: str
    """Its data (redacted, the model record left out) as indented JSON."""
    by: str | None
    """Who decided, for a decision."""
    tokens: tuple[int, int] | None
    """The model call's input and output tokens, for an event a model call wrote."""


def _text(value: object) -> str:
    """A value in one line: text as it is, a flat object as `key: value` pairs, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value:
        pairs = cast(dict[str, Any], value).items()
        return " · ".join(
            f"{key}: {item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)}" for key, item in pairs
        )
    return json.dumps(value, ensure_ascii=False)


def view(event: Event, redaction: Redaction) -> EventView:
    """How the timeline shows `event`."""
    raw = cast(dict[str, Any], event.data) if isinstance(event.data, dict) else {}
    record = raw.get("model")
    data = redaction.apply({k: v for k, v in raw.items() if k != "model"} if raw else event.data)
    fields = cast(dict[str, Any], data) if isinstance(data, dict) else {}
    title, tone, summary = _describe(event.type, fields, data)
    tokens = None
    if isinstance(record, dict):
        usage = cast(dict[str, Any], record)
        tokens = (int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0))
    by = fields.get("by") if event.type in (APPROVAL, HUMAN_RESPONSE) else None
    detail = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return EventView(event, title, tone, summary, detail, str(by) if by is not None else None, tokens)


def _describe(kind: str, fields: dict[str, Any], data: JsonValue) -> tuple[str, str, str]:
    """Title, tone and summary of an event, by its type (the names of `threadloom.events`)."""
    match kind:
        case "tool_call":
            arguments: JsonValue = fields.get("arguments") or {}
            policy = " (needs approval)" if fields.get("policy") == "approval" else ""
            return f"Calls {fields.get('intent')}{policy}", "model", _text(arguments)
        case "approval":
            if fields.get("approved"):
                edits: JsonValue = fields.get("edits") or {}
                return "Approved", "person", f"with edits: {_text(edits)}" if edits else "as proposed"
            return "Rejected", "person", str(fields.get("feedback") or "")
        case "tool_started":
            return f"{fields.get('intent')} started", "note", ""
        case "tool_response":
            return f"{fields.get('intent')} returned", "tool", _text(fields.get("result"))
        case "error":
            return f"Error ({fields.get('source', 'tool')})", "error", str(fields.get("message") or "")
        case "request_human_input":
            return "Asks a person", "model", str(fields.get("question") or "")
        case "request_more_information":
            return "Asks for more information", "model", str(fields.get("message") or "")
        case "human_response":
            return "Answered", "person", str(fields.get("text") or "")
        case "done_for_now":
            return "Done", "done", str(fields.get("message") or "")
        case "wait_until":
            return "Sleeps", "note", f"until {fields.get('until')}: {fields.get('reason') or ''}".rstrip(": ")
        case "failed":
            return "Failed", "error", str(fields.get("reason") or "")
        case "user_input":
            return "Input", "input", _text(fields.get("text", data) if fields else data)
        case _ if is_bookkeeping(kind):
            return kind.replace("_", " ").capitalize(), "note", _text(data)
        case _:
            return kind.replace("_", " ").capitalize(), "input", _text(data)


def timeline(thread: Thread, redaction: Redaction, *, last: int | None = None) -> list[EventView]:
    """The thread's events as the timeline shows them, all of them or the `last` few."""
    events = thread.events[-last:] if last else thread.events[:]
    return [view(event, redaction) for event in events]
