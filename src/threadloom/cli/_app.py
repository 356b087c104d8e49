"""What every `threadloom` command shares: the apps, the options, output that is text not markup, one-line errors."""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import os
import shlex
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar, cast

try:
    import typer
    from rich.console import Console
    from rich.text import Text
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the threadloom command needs the `cli` extra: pip install 'threadloom[cli]'") from exc

from pydantic import JsonValue

from ..agent import Agent
from ..exceptions import ThreadDecodeError, ThreadloomError, ThreadNotFound, UserError
from ..intents import Tool
from ..runtime import Runtime
from ..store import DEFAULT_URL, open_store
from ..store.base import masked, masked_url
from ..thread import Thread
from ._misuse import OneLineErrors

__all__ = [
    "STATUS_STYLES",
    "AgentsOption",
    "KeyOption",
    "OptionalAgentsOption",
    "StoreOption",
    "above_zero",
    "app",
    "at_least_one",
    "command_for",
    "console",
    "decode_problem",
    "existing_store",
    "fail",
    "hide_password",
    "load",
    "load_agents",
    "run",
    "say",
    "shown",
    "status_line",
    "threads",
    "unreadable",
    "with_parameters",
    "write_json",
]

_T = TypeVar("_T")

app = typer.Typer(help="threadloom: run agent workers and look after threads.", no_args_is_help=True, cls=OneLineErrors)
threads = typer.Typer(help="List, show, render, fork and decide on threads.", no_args_is_help=True)
app.add_typer(threads, name="threads")

# Every piece of text that reaches these consoles is a `Text` (or printed with markup off): thread
# ids, agent names, questions and event data are written by users, models and stores, and rich
# would read `[/bold]` in them as markup (a MarkupError) and `[link=...]` as a link (issue 13.9).
# soft_wrap: a line is never broken at the terminal's width, so an id or a command copies whole;
# only tables fit themselves to the width.
console = Console(soft_wrap=True, highlight=False)
_errors = Console(stderr=True, soft_wrap=True, highlight=False)

StoreOption = Annotated[str, typer.Option("--store", envvar="THREADLOOM_STORE", help="Store URL.")]
KeyOption = Annotated[
    str | None, typer.Option("--key", help="Idempotency key: a repeat with the same key changes nothing.")
]
_AGENTS_HELP = "module:attribute of an Agent, a list of them, or a function returning either."
AgentsOption = Annotated[list[str], typer.Option("--agents", envvar="THREADLOOM_AGENTS", help=_AGENTS_HELP)]
OptionalAgentsOption = Annotated[
    list[str] | None, typer.Option("--agents", envvar="THREADLOOM_AGENTS", help=_AGENTS_HELP)
]

STATUS_STYLES = {
    "ready": "cyan",
    "waiting_approval": "bold yellow",
    "waiting_human": "bold magenta",
    "sleeping": "blue",
    "done": "green",
    "failed": "red",
    "unreadable": "bold red",
}
"""How `threads ls` and the status line colour each status."""


def say(*parts: str | tuple[str, str]) -> None:
    """Print one line to stdout: each part plain text, or `(text, style)`; never read as markup."""
    console.print(Text.assemble(*parts))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` as one line to stderr and exit with `code` (1: it failed, 2: misuse)."""
    _errors.print(Text.assemble(("error:", "red"), " ", " ".join(message.splitlines())))
    raise typer.Exit(code)


def write_json(value: JsonValue) -> None:
    """One JSON object on one line of stdout, as scripts read it (no rich: no wrapping, no colour)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")


def load_agents(specs: list[str]) -> list[Agent]:
    """Import agents named `module:attribute` (an Agent, a sequence of Agents, or a function returning either).

    Raises:
        typer.BadParameter: A spec cannot be imported or is not an agent.
    """
    found: list[Agent] = []
    sys.path.insert(0, ".")  # so `examples.deploy_bot:build_agent` works from a checkout
    for spec in specs:
        module_name, _, attribute = spec.partition(":")
        if not module_name:
            raise typer.BadParameter(f"cannot import {spec!r}: write module:attribute, e.g. examples.deploy_bot:agent")
        try:
            value: Any = getattr(importlib.import_module(module_name), attribute or "agent")
        except (ImportError, AttributeError, ValueError) as exc:  # ValueError: `.` alone, a relative name
            raise typer.BadParameter(f"cannot import {spec!r}: {exc}") from exc
        # A tool is callable too: calling it would run it (with arguments it does not get), not build an agent.
        if callable(value) and not isinstance(value, Agent | Tool):
            try:
                value = value()
            except TypeError as exc:  # a function that needs arguments: not a factory of agents
                raise typer.BadParameter(f"cannot call {spec!r} without arguments: {exc}") from exc
        items: list[Any] = list(value) if isinstance(value, list | tuple) else [value]  # pyright: ignore[reportUnknownArgumentType]
        for item in items:
            if not isinstance(item, Agent):
                raise typer.BadParameter(f"{spec!r} gives a {type(item).__name__}, not an Agent")
            found.append(item)
    return found


def at_least_one(value: int, option: str) -> None:
    """End the command as misuse (exit 2, one line) unless `value` is 1 or more."""
    if value < 1:
        fail(f"{option} must be at least 1, got {value}", code=2)


def above_zero(value: float, option: str) -> None:
    """End the command as misuse (exit 2, one line) unless `value` is a finite number above 0."""
    if not (math.isfinite(value) and value > 0):  # NaN compares false with everything: check it by name
        fail(f"{option} must be a number above 0, got {value}", code=2)


def existing_store(url: str) -> str:
    """`url`, once it names a store that exists: only a command that starts work creates one (issue 15.4).

    A SQLite file that is not there is refused with the path looked at: from the wrong directory the
    default `./threadloom.db` would otherwise be a new, empty store and an empty answer.
    """
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) and not path.exists():
            fail(f"no SQLite store at {path.absolute()} ({url}); pass --store or set THREADLOOM_STORE")
    return url


def run(store: str, agents: list[Agent], work: Callable[[Runtime], Awaitable[_T]]) -> _T:
    """Run `work` on a runtime over an existing store; a threadloom error ends the command in one line.

    The store is opened as it is: a database that is no store of this threadloom's schema is
    refused unchanged (only `worker` and `serve` create or upgrade one).
    """
    url = existing_store(store)

    async def main() -> _T:
        opened = await open_store(url, upgrade=False)
        try:
            return await work(Runtime(store=opened, agents=agents))
        finally:
            await opened.aclose()

    try:
        return asyncio.run(main())
    except UserError as exc:  # misuse: an edit that does not fit the tool, a store URL of no known kind, ...
        fail(hide_password(store, with_parameters(exc)), code=2)
    except ThreadloomError as exc:
        fail(hide_password(store, str(exc)))


def with_parameters(exc: UserError) -> str:
    """The error's message, and the tool's parameters where the error lists them (`parameters`)."""
    # The Runtime's check of approval edits, or `check_edits`', attaches them, unless its message has them.
    parameters: object = getattr(exc, "parameters", None)
    names = [str(p) for p in cast("Sequence[object]", parameters)] if isinstance(parameters, list | tuple) else []
    if names and not all(name in str(exc) for name in names):
        return f"{exc}; parameters: {', '.join(names)}"
    return str(exc)


def hide_password(url: str, text: str) -> str:
    """`text` with the store URL's password (`user:secret@` or `password=secret`), wherever it appears, as `***`."""
    return masked(text, url)


async def load(runtime: Runtime, thread_id: str) -> Thread:
    """The stored thread; one that cannot be decoded ends the command with one line naming it (issue 15.2)."""
    try:
        return await runtime.get(thread_id)
    except ThreadNotFound:
        raise
    except (ThreadDecodeError, ValueError, TypeError) as exc:
        # Until every store raises ThreadDecodeError, a bad row comes up as the decoder's own error.
        fail(unreadable(thread_id, exc))


def unreadable(thread_id: str, exc: Exception) -> str:
    """One line naming the thread, the event (where the error knows it) and what could not be decoded."""
    problem = decode_problem(exc)
    return problem if thread_id in problem else f"thread {thread_id!r} cannot be read: {problem}"


def decode_problem(exc: Exception) -> str:
    """What could not be decoded, in one line: the event where the error knows it, and why."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, ThreadDecodeError):  # the decoder's own error: say which
        text = f"{type(exc).__name__}: {text}"
    event_id = getattr(exc, "event_id", None)
    if event_id is not None and str(event_id) not in text:
        text = f"event {event_id!r}: {text}"
    return text


def status_line(thread: Thread) -> None:
    """`thread TH is STATUS: what it waits for`."""
    reason = f": {thread.waiting_reason}" if thread.waiting_reason else ""
    say("thread ", thread.id, " is ", (thread.status, STATUS_STYLES[thread.status]), reason)


def command_for(store: str, *words: str) -> str:
    """The shell command that runs `threadloom *words` on this store, quoted to paste."""
    given = os.environ.get("THREADLOOM_STORE", DEFAULT_URL)
    where = [] if store == given else ["--store", shown(store)]
    return shlex.join(["threadloom", *words, *where])


def shown(url: str) -> str:
    """The store URL without its password (`user:secret@` or `password=secret`), for banners and logs."""
    # The stores' own errors mask with the same function: one masking, so no place shows what another hides.
    return masked_url(url)
