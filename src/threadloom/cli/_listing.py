"""`threadloom threads ls`: the newest threads first, what each waits for, ids whole."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, cast, get_args

import typer
from pydantic import JsonValue
from rich.table import Table
from rich.text import Text

from ..exceptions import ThreadDecodeError
from ..runtime import Runtime
from ..state import Status
from ..store import DEFAULT_URL, ThreadSummary
from ._app import STATUS_STYLES, StoreOption, console, decode_problem, run, write_json

__all__ = ["Row", "list_threads", "rows"]

_STATUSES: tuple[str, ...] = get_args(Status)


@dataclass(frozen=True, slots=True)
class Row:
    """One listed thread: its summary and what its events say (or why they cannot be read)."""

    summary: ThreadSummary
    """The store's row."""
    waiting_for: str | None
    """What it waits for: a person (`waiting_reason`), a time, an outside event; None otherwise."""
    error: str | None = None
    """Why its events cannot be decoded; the thread is shown `unreadable`."""

    @property
    def status(self) -> str:
        """The stored status, or `unreadable`."""
        return "unreadable" if self.error is not None else self.summary.status

    def to_json(self) -> dict[str, JsonValue]:
        """The row as `--json` prints it."""
        s = self.summary
        return {
            "thread_id": s.thread_id,
            "agent": s.agent,
            "status": self.status,
            "waiting_for": self.waiting_for,
            "events": s.events,
            "updated_at": s.updated_at.isoformat(),
            "wake_at": None if s.wake_at is None else s.wake_at.isoformat(),
            "parent_id": s.parent_id,
            "error": self.error,
        }


async def rows(
    runtime: Runtime, *, status: Status | None, agent: str | None, updated_after: datetime | None, limit: int | None
) -> tuple[list[Row], int]:
    """The newest `limit` matching threads (all for None), each read for what it waits for; and how many match.

    The store lists oldest first and counts nothing, so every matching summary is read and sorted
    here; only the threads shown are loaded.
    """
    found = await runtime.list(status=status, agent=agent, updated_after=updated_after, limit=sys.maxsize)
    found.sort(key=lambda s: (s.updated_at, s.thread_id), reverse=True)
    return [await _row(runtime, s) for s in found[:limit]], len(found)


async def _row(runtime: Runtime, summary: ThreadSummary) -> Row:
    try:
        thread = await runtime.get(summary.thread_id)
    except (ThreadDecodeError, ValueError, TypeError) as exc:
        return Row(summary, None, decode_problem(exc))
    if thread.waiting_reason is not None:
        return Row(summary, thread.waiting_reason)
    if thread.status == "sleeping":
        wake = thread.state.wake_at
        return Row(summary, "an outside event" if wake is None else f"{wake:%Y-%m-%d %H:%M:%S} UTC")
    return Row(summary, None)


def list_threads(
    store: StoreOption = DEFAULT_URL,
    status: Annotated[str | None, typer.Option(help=f"Only this status: {', '.join(_STATUSES)}.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent.")] = None,
    updated_after: Annotated[
        datetime | None, typer.Option(help="Only threads appended to after this time (UTC unless it says).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show the newest N.")] = 50,
    all_: Annotated[bool, typer.Option("--all", help="Show every matching thread.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line, one line a thread.")] = False,
) -> None:
    """List threads, most recently updated first, with what each waits for."""
    if status is not None and status not in _STATUSES:
        raise typer.BadParameter(f"status must be one of {', '.join(_STATUSES)}", param_hint="--status")
    wanted = cast("Status | None", status)  # one of Status's values, checked above
    after = updated_after if updated_after is None or updated_after.tzinfo else updated_after.replace(tzinfo=UTC)
    shown, total = run(
        store,
        [],
        lambda r: rows(r, status=wanted, agent=agent, updated_after=after, limit=None if all_ else limit),
    )
    more = f"{len(shown)} of {total} threads; --limit N or --all for more" if len(shown) < total else None
    if as_json:
        for row in shown:
            write_json(row.to_json())
        if more:
            typer.echo(more, err=True)  # stdout stays one object a line
        return
    _print(shown)
    if more:
        console.print(Text(more, style="dim"))


_OTHER_COLUMNS = 16 + 10 + 20 + 8
"""The width the table needs besides the id: status, updated, some of agent and reason, the gaps."""


def _print(shown: list[Row]) -> None:
    # The id is never cut nor wrapped, whatever the width: the other columns give way (their text
    # folds, never cut off with an ellipsis), so a copied id always works in `threads show`.
    now = datetime.now(UTC)
    longest = max((len(r.summary.thread_id) for r in shown), default=6)
    if longest + _OTHER_COLUMNS > console.width:
        # An id too long for a table at this width: a block a thread, the id on a line of its own.
        for row in shown:
            thread_id, status, updated, agent, waiting = _cells(row, now)
            console.print(thread_id)
            console.print(Text.assemble("  ", status, " ", updated, " ", agent, ": " if waiting else "", waiting))
        return
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    table.add_column("thread", no_wrap=True, min_width=longest)
    table.add_column("status", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    table.add_column("agent", overflow="fold", ratio=1)
    table.add_column("waiting for", overflow="fold", ratio=3)
    for row in shown:
        table.add_row(*_cells(row, now))
    console.print(table)


def _cells(row: Row, now: datetime) -> tuple[Text, Text, Text, Text, Text]:
    s = row.summary
    return (
        Text(s.thread_id),
        Text(row.status, style=STATUS_STYLES[row.status]),
        Text(_ago(now, s.updated_at)),
        Text(s.agent or ""),
        Text(row.error or row.waiting_for or ""),
    )


def _ago(now: datetime, then: datetime) -> str:
    """How long ago, as short as a narrow table needs (`--json` has the time itself)."""
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago" if unit != "d" or seconds < 30 * 86_400 else f"{then:%Y-%m-%d}"
    return f"{seconds}s ago"
