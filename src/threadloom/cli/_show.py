"""`threadloom threads show` and `render`: a thread as an operator reads it, and as its model gets it."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from pydantic import JsonValue

from ..context import DEFAULT_SECRET_PATTERN, redact
from ..events import Event
from ..exceptions import ThreadloomError
from ..models import cost
from ..runtime import Runtime
from ..state import TOOL_CALL, model_record
from ..store import DEFAULT_URL
from ..thread import Thread
from ._app import AgentsOption, StoreOption, command_for, load, load_agents, run, say, status_line, write_json

__all__ = ["event_data", "render", "show", "thread_json"]

_Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also each event's model call (`data.model`).")]
_ShowSecrets = Annotated[
    bool, typer.Option("--show-secrets", help="Print values under secret-looking keys instead of [REDACTED].")
]
_Json = Annotated[bool, typer.Option("--json", help="The thread as one JSON object on one line.")]


def event_data(event: Event, *, verbose: bool, secrets: bool) -> JsonValue:
    """What `show` prints of an event's data: redacted unless `secrets`, without its model record unless `verbose`."""
    data = event.data
    record = model_record(event)
    if record is None or not isinstance(data, dict):
        return data if secrets else redact(data, DEFAULT_SECRET_PATTERN)
    # The model record is threadloom's own bookkeeping: token counts, not secrets (though `*_tokens`
    # keys look like secrets to the redaction pattern).
    rest = {k: v for k, v in data.items() if k != "model"}
    shown = rest if secrets else redact(rest, DEFAULT_SECRET_PATTERN)
    return {**shown, "model": dict(record)} if verbose and isinstance(shown, dict) else shown


def thread_json(thread: Thread, *, verbose: bool, secrets: bool) -> dict[str, JsonValue]:
    """The thread as `show --json` prints it."""
    spent = cost(thread)
    pending = thread.pending
    return {
        "thread_id": thread.id,
        "agent": thread.metadata.get("agent"),
        "status": thread.status,
        "waiting_for": thread.waiting_reason,
        "pending": None if pending is None else pending.id,
        "metadata": dict(thread.metadata) if secrets else redact(dict(thread.metadata), DEFAULT_SECRET_PATTERN),
        "usage": {
            name: {
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cached_tokens": u.cached_tokens,
                "requests": u.requests,
            }
            for name, u in thread.usage_by_model.items()
        },
        "cost": {"total": spent.total, "by_model": dict(spent.by_model), "unpriced": list(spent.unpriced)},
        "events": [
            {
                "id": e.id,
                "type": e.type,
                "at": e.at.isoformat(),
                "data": event_data(e, verbose=verbose, secrets=secrets),
            }
            for e in thread.events
        ],
    }


def show(
    thread_id: str,
    store: StoreOption = DEFAULT_URL,
    verbose: _Verbose = False,
    show_secrets: _ShowSecrets = False,
    as_json: _Json = False,
) -> None:
    """Print a thread's events, its usage and cost, and what it waits for (with the command that answers it)."""
    thread = run(store, [], lambda r: load(r, thread_id))
    if as_json:
        write_json(thread_json(thread, verbose=verbose, secrets=show_secrets))
        return
    _header(thread)
    for event in thread.events:
        say((f"{event.at:%Y-%m-%d %H:%M:%S} UTC", "dim"), " ", (event.type, "bold"), " ", (event.id, "dim"))
        data = event_data(event, verbose=verbose, secrets=show_secrets)
        say("  ", json.dumps(data, ensure_ascii=False))
    _pending(thread, store, secrets=show_secrets)
    status_line(thread)


def _header(thread: Thread) -> None:
    agent = thread.metadata.get("agent")
    say(("thread ", "bold"), thread.id, f" of agent {agent}" if agent else "", f", {len(thread)} events")
    forked = thread.metadata.get("forked_from")
    if forked:
        say("forked from ", str(forked))
    usage = thread.usage_by_model
    if not usage:
        return
    spent = cost(thread)
    for name, used in usage.items():
        cached = f" ({used.cached_tokens:,} cached)" if used.cached_tokens else ""
        calls = "call" if used.requests == 1 else "calls"
        price = f"${spent.by_model[name]:.4f}" if name in spent.by_model else "no price known"
        tokens = f"{used.input_tokens:,} tokens in{cached}, {used.output_tokens:,} out"
        say("usage: ", name, f": {used.requests} {calls}, {tokens}; {price}")
    unpriced = f" (without {', '.join(spent.unpriced)})" if spent.unpriced else ""
    say("cost: ", (f"${spent.total:.4f}", "bold"), unpriced)


def _pending(thread: Thread, store: str, *, secrets: bool) -> None:
    """What the thread waits for, and the commands that answer it, to copy."""
    pending = thread.pending
    if pending is None or thread.waiting_reason is None:
        return
    data = pending.data if isinstance(pending.data, dict) else {}
    say(("waiting for ", "bold"), thread.waiting_reason, " (", pending.id, ")")
    if pending.type == TOOL_CALL and thread.status == "waiting_approval":
        arguments = data.get("arguments", {})
        say("  arguments: ", json.dumps(arguments if secrets else redact(arguments, DEFAULT_SECRET_PATTERN)))
        say("  approve: ", command_for(store, "threads", "approve", thread.id, pending.id))
        key = next(iter(arguments), "key") if isinstance(arguments, dict) else "key"
        say("  edit:    ", command_for(store, "threads", "approve", thread.id, pending.id, "--edit", f"{key}=..."))
        reject = ("threads", "reject", thread.id, pending.id, "--feedback", "why")
        say("  reject:  ", command_for(store, *reject))
    else:
        choices = data.get("choices")
        if isinstance(choices, list) and choices:
            say("  choices: ", ", ".join(str(c) for c in choices))
        say("  respond: ", command_for(store, "threads", "respond", thread.id, "your answer"))


def render(
    thread_id: str,
    agents: AgentsOption,
    store: StoreOption = DEFAULT_URL,
    as_json: Annotated[bool, typer.Option("--json", help="The messages as JSON, one line.")] = False,
) -> None:
    """Print exactly what the thread's agent would send its model now, each message after a line naming its role."""
    loaded = load_agents(agents)

    async def work(runtime: Runtime) -> str:
        thread = await load(runtime, thread_id)
        agent = runtime.agents.get(str(thread.metadata.get("agent")))
        if agent is None:
            raise ThreadloomError(f"thread {thread_id!r} belongs to agent {thread.metadata.get('agent')!r}, not given")
        messages = agent.render(thread)
        if as_json:
            return json.dumps([m.to_dict() for m in messages], ensure_ascii=False) + "\n"
        return "".join(f"[{m.role}]\n{m.content}\n" for m in messages)

    # Written as it is, not through rich: no wrap at the terminal's width (nor at 80 when piped),
    # no markup, so `render > prompt.txt` holds exactly the model's text (issue 15.5).
    sys.stdout.write(run(store, loaded, work))
