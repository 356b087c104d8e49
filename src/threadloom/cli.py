"""The `threadloom` command: run workers and look after threads from a shell (extra `cli`).

    threadloom worker --agents examples.deploy_bot:build_agent
    threadloom threads ls --status waiting_approval
    threadloom threads approve TH_ID
    threadloom threads respond TH_ID "use staging"

The store comes from `--store` or `THREADLOOM_STORE`, default `sqlite:///threadloom.db`.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

try:
    import typer
    from rich.console import Console
    from rich.table import Table
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the threadloom command needs the `cli` extra: pip install 'threadloom[cli]'") from exc

from pydantic import JsonValue

from .agent import Agent
from .exceptions import ThreadloomError
from .runtime import Runtime
from .state import Status
from .store import DEFAULT_URL
from .thread import Thread
from .worker import Worker

__all__ = ["app", "main"]

_T = TypeVar("_T")

app = typer.Typer(help="threadloom: run agent workers and look after threads.", no_args_is_help=True)
threads = typer.Typer(help="List, show, render, fork and decide on threads.", no_args_is_help=True)
app.add_typer(threads, name="threads")
console = Console()

StoreOption = Annotated[str, typer.Option("--store", envvar="THREADLOOM_STORE", help="Store URL.")]
KeyOption = Annotated[
    str | None, typer.Option("--key", help="Idempotency key: a repeat with the same key changes nothing.")
]
AgentsOption = Annotated[
    list[str],
    typer.Option("--agents", help="module:attribute of an Agent, a list of them, or a function returning either."),
]


def load_agents(specs: list[str]) -> list[Agent]:
    """Import agents named `module:attribute` (an Agent, a sequence of Agents, or a function returning either).

    Raises:
        typer.BadParameter: A spec cannot be imported or is not an agent.
    """
    found: list[Agent] = []
    sys.path.insert(0, ".")  # so `examples.deploy_bot:build_agent` works from a checkout
    for spec in specs:
        module_name, _, attribute = spec.partition(":")
        try:
            value: Any = getattr(importlib.import_module(module_name), attribute or "agent")
        except (ImportError, AttributeError) as exc:
            raise typer.BadParameter(f"cannot import {spec!r}: {exc}") from exc
        if callable(value) and not isinstance(value, Agent):
            value = value()
        items: list[Any] = list(value) if isinstance(value, list | tuple) else [value]  # pyright: ignore[reportUnknownArgumentType]
        for item in items:
            if not isinstance(item, Agent):
                raise typer.BadParameter(f"{spec!r} gives a {type(item).__name__}, not an Agent")
            found.append(item)
    return found


def _run(store: str, agents: list[Agent], work: Callable[[Runtime], Awaitable[_T]]) -> _T:
    async def main() -> _T:
        runtime = Runtime(store=store, agents=agents)
        try:
            return await work(runtime)
        finally:
            await runtime.aclose()

    try:
        return asyncio.run(main())
    except ThreadloomError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def worker(
    agents: AgentsOption,
    store: StoreOption = DEFAULT_URL,
    concurrency: Annotated[int, typer.Option(help="Threads run at once.")] = 4,
    lease_seconds: Annotated[float, typer.Option(help="Lease length; renewed every third of it.")] = 30,
    poll_seconds: Annotated[
        float, typer.Option(help="Look for work this often when nothing announces any (PostgreSQL announces it).")
    ] = 0.5,
) -> None:
    """Run a worker until SIGTERM / Ctrl-C: claim runnable threads and run their agents.

    On SIGTERM it stops claiming, ends each run after its current step and releases the threads.
    """
    runtime = Runtime(store=store, agents=load_agents(agents))
    banner = f"worker on {_shown(store)} with agents {', '.join(runtime.agents)}; Ctrl-C to stop"
    try:
        # The banner comes once SIGTERM is handled, so a supervisor that waits for it can stop us cleanly.
        Worker(runtime, concurrency=concurrency, lease_seconds=lease_seconds, poll_seconds=poll_seconds).serve(
            on_ready=lambda: console.print(banner)
        )
    except ThreadloomError as exc:  # the store cannot be opened: say so in one line
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


@threads.command("ls")
def list_threads(
    store: StoreOption = DEFAULT_URL,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent.")] = None,
    updated_after: Annotated[
        datetime | None, typer.Option(help="Only threads appended to after this time (UTC unless it says).")
    ] = None,
    limit: int = 50,
) -> None:
    """List threads, least recently updated first."""
    after = updated_after if updated_after is None or updated_after.tzinfo else updated_after.replace(tzinfo=UTC)
    rows = _run(store, [], lambda r: r.list(status=_status(status), agent=agent, updated_after=after, limit=limit))
    table = Table("thread", "agent", "status", "events", "updated")
    for row in rows:
        table.add_row(
            row.thread_id, row.agent or "", row.status, str(row.events), f"{row.updated_at:%Y-%m-%d %H:%M:%S}"
        )
    console.print(table)


@threads.command("show")
def show(thread_id: str, store: StoreOption = DEFAULT_URL) -> None:
    """Print a thread's events, and what it waits for."""
    thread = _run(store, [], lambda r: r.get(thread_id))
    for event in thread.events:
        console.print(f"[dim]{event.at:%H:%M:%S}[/dim] [bold]{event.type}[/bold] {event.id}", highlight=False)
        console.print(f"  {json.dumps(event.data, ensure_ascii=False)}", highlight=False, markup=False)
    _status_line(thread)


@threads.command("render")
def render(thread_id: str, agents: AgentsOption, store: StoreOption = DEFAULT_URL) -> None:
    """Print exactly what the thread's agent would send its model now."""
    loaded = load_agents(agents)

    async def work(runtime: Runtime) -> None:
        thread = await runtime.get(thread_id)
        agent = runtime.agents.get(str(thread.metadata.get("agent")))
        if agent is None:
            raise ThreadloomError(f"thread {thread_id!r} belongs to agent {thread.metadata.get('agent')!r}, not given")
        for message in agent.render(thread):
            console.print(f"[bold]\\[{message.role}][/bold]")
            console.print(message.content, markup=False, highlight=False)

    _run(store, loaded, work)


@threads.command("fork")
def fork(
    thread_id: str, at: Annotated[str, typer.Option(help="Last event id to keep.")], store: StoreOption = DEFAULT_URL
) -> None:
    """Copy a thread up to an event into a new thread."""
    console.print(_run(store, [], lambda r: r.fork(thread_id, at)))


@threads.command("approve")
def approve(
    thread_id: str,
    call_id: Annotated[str | None, typer.Argument(help="The pending call; the one pending by default.")] = None,
    edit: Annotated[list[str] | None, typer.Option(help="key=JSON value to change before it runs.")] = None,
    store: StoreOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Approve the pending tool call; a worker runs it next."""
    edits = _edits(edit or [])

    async def work(runtime: Runtime) -> Thread:
        if key is not None and await _delivered(runtime, key):
            return await runtime.get(thread_id)
        pending = call_id or await _pending(runtime, thread_id)
        return await runtime.approve(thread_id, pending, edits or None, idempotency_key=key)

    _status_line(_run(store, [], work))


@threads.command("reject")
def reject(
    thread_id: str,
    feedback: Annotated[str, typer.Option(help="Why, for the model.")],
    call_id: Annotated[str | None, typer.Argument(help="The pending call; the one pending by default.")] = None,
    store: StoreOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Reject the pending tool call; the feedback goes to the model."""

    async def work(runtime: Runtime) -> Thread:
        if key is not None and await _delivered(runtime, key):
            return await runtime.get(thread_id)
        pending = call_id or await _pending(runtime, thread_id)
        return await runtime.reject(thread_id, pending, feedback, idempotency_key=key)

    _status_line(_run(store, [], work))


@threads.command("respond")
def respond(thread_id: str, text: str, store: StoreOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """Answer the pending human request."""

    async def work(runtime: Runtime) -> Thread:
        if key is not None and await _delivered(runtime, key):
            return await runtime.get(thread_id)
        return await runtime.respond(thread_id, await _pending(runtime, thread_id), text, idempotency_key=key)

    _status_line(_run(store, [], work))


async def _delivered(runtime: Runtime, key: str) -> bool:
    # A repeat of a delivery that went through: the thread has moved on, so there is no pending call
    # to name any more, and nothing to do.
    return await (await runtime.store()).find_key(key) is not None


async def _pending(runtime: Runtime, thread_id: str) -> str:
    thread = await runtime.get(thread_id)
    if thread.pending is None:
        raise ThreadloomError(f"thread {thread_id!r} is {thread.status!r}: nothing waits for a person")
    return thread.pending.id


def _edits(items: list[str]) -> dict[str, JsonValue]:
    edits: dict[str, JsonValue] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--edit takes key=value, got {item!r}")
        try:
            edits[key] = json.loads(value)
        except ValueError:
            edits[key] = value  # a bare word is a string
    return edits


def _status(value: str | None) -> Status | None:
    allowed = ("ready", "waiting_approval", "waiting_human", "sleeping", "done", "failed")
    if value is not None and value not in allowed:
        raise typer.BadParameter(f"status must be one of {', '.join(allowed)}")
    return value


def _shown(url: str) -> str:
    """The store URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def _status_line(thread: Thread) -> None:
    reason = f": {thread.waiting_reason}" if thread.waiting_reason else ""
    console.print(f"thread {thread.id} is [bold]{thread.status}[/bold]{reason}", highlight=False)


def main() -> None:
    """Entry point of the `threadloom` command."""
    app()


if __name__ == "__main__":
    main()
