"""`threadloom usage`: tokens and cost per thread, agent or model, from what the stored threads record."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import JsonValue
from rich.table import Table
from rich.text import Text

from ..exceptions import ThreadDecodeError, UserError
from ..models import PRICES_AS_OF, Price, Usage, cost, load_prices
from ..runtime import Runtime
from ..state import model_record, record_usage
from ..store import DEFAULT_URL
from ..thread import Thread
from ._app import StoreOption, console, decode_problem, fail, run, say, write_json

__all__ = ["Group", "Totals", "parse_since", "totals", "usage"]

By = Literal["thread", "agent", "model"]

_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(slots=True)
class Group:
    """One row of the report: the threads of one thread id, agent or model, and what their calls used."""

    key: str
    """The thread id, the agent's name or the model's name."""
    usage: dict[str, Usage] = field(default_factory=lambda: {})
    """Tokens per model name."""
    threads: set[str] = field(default_factory=lambda: set[str]())
    """The threads counted."""
    agents: set[str] = field(default_factory=lambda: set[str]())
    """Their agents."""

    @property
    def used(self) -> Usage:
        """All the group's tokens and calls."""
        return sum(self.usage.values(), Usage(requests=0))


@dataclass(frozen=True, slots=True)
class Totals:
    """The report: its rows, everything added up, and what could not be counted."""

    groups: list[Group]
    """The rows, the costliest first."""
    total: Group
    """Every counted thread."""
    read: int
    """Threads read (those without a model call since `--since` make no row)."""
    unreadable: list[tuple[str, str]]
    """Threads that could not be decoded, with why."""


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """`--since`: an ISO date or time (UTC unless it says), or a span back from now like `30m`, `12h`, `7d`, `2w`.

    Raises:
        typer.BadParameter: Neither.
    """
    span = _DURATION.fullmatch(value.strip())
    if span is not None:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[span[2]]: int(span[1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither a date or time (2026-11-01, 2026-11-01T09:00) nor a span (30m, 12h, 7d, 2w)",
            param_hint="--since",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _used_since(thread: Thread, since: datetime | None) -> Mapping[str, Usage]:
    """The thread's usage per model, counting only model calls recorded at or after `since`."""
    if since is None:
        return thread.usage_by_model  # what the fold totals
    used: dict[str, Usage] = {}
    for event in thread.events:
        record = model_record(event)
        if record is None or event.at < since:
            continue
        name = str(record["name"])
        used[name] = used[name] + record_usage(record) if name in used else record_usage(record)
    return used


async def totals(
    runtime: Runtime,
    *,
    by: By,
    agent: str | None = None,
    thread_ids: Sequence[str] = (),
    since: datetime | None = None,
    prices: Mapping[str, Price] | None = None,
) -> Totals:
    """Read the matching threads and add up their usage by `by`.

    Raises:
        ThreadNotFound: A thread named in `thread_ids` is not stored.
    """
    if thread_ids:
        ids = list(dict.fromkeys(thread_ids))
    else:
        # A thread not appended to since `since` has no model call since then either.
        found = await runtime.list(agent=agent, updated_after=since, limit=sys.maxsize)
        ids = [s.thread_id for s in found]
    groups: dict[str, Group] = {}
    total = Group("total")
    unreadable: list[tuple[str, str]] = []
    read = 0
    for thread_id in ids:
        try:
            thread = await runtime.get(thread_id)
        except (ThreadDecodeError, ValueError, TypeError) as exc:
            unreadable.append((thread_id, decode_problem(exc)))
            continue
        owner = str(thread.metadata.get("agent") or "")
        if agent is not None and owner != agent:
            continue
        read += 1
        for model, used in _used_since(thread, since).items():
            key = {"thread": thread.id, "agent": owner, "model": model}[by]
            for group in (groups.setdefault(key, Group(key)), total):
                group.usage[model] = group.usage[model] + used if model in group.usage else used
                group.threads.add(thread.id)
                group.agents.add(owner)
    ordered = sorted(groups.values(), key=lambda g: (-cost(g.usage, prices=prices).total, -_tokens(g), g.key))
    return Totals(ordered, total, read, unreadable)


def _tokens(group: Group) -> int:
    used = group.used
    return used.input_tokens + used.output_tokens


def usage(
    store: StoreOption = DEFAULT_URL,
    agent: Annotated[str | None, typer.Option(help="Only this agent's threads.")] = None,
    thread: Annotated[list[str] | None, typer.Option("--thread", help="Only this thread (repeat for more).")] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only model calls since: a date or time (UTC unless it says), or 30m, 12h, 7d, 2w."),
    ] = None,
    by: Annotated[By, typer.Option(help="One row per thread, agent or model.")] = "model",
    prices: Annotated[
        Path | None, typer.Option(help="A price table (YAML or JSON) laid over the built-in one.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as one JSON object on one line.")] = False,
) -> None:
    """Tokens and cost of the stored threads' model calls, per model, agent or thread."""
    start = None if since is None else parse_since(since)
    try:
        table = None if prices is None else load_prices(prices)
    except UserError as exc:
        fail(str(exc), code=2)
    report = run(
        store,
        [],
        lambda r: totals(r, by=by, agent=agent, thread_ids=thread or (), since=start, prices=table),
    )
    for thread_id, problem in report.unreadable:
        typer.echo(f"skipped thread {thread_id}: {problem}", err=True)  # stdout stays the report
    if as_json:
        write_json(_json(report, by, start, prices, table))
        return
    _print(report, by, start, prices, table)


def _priced(group: Group, prices: Mapping[str, Price] | None) -> dict[str, JsonValue]:
    used, spent = group.used, cost(group.usage, prices=prices)
    return {
        "threads": len(group.threads),
        "agents": list[JsonValue](sorted(group.agents)),
        "models": list[JsonValue](sorted(group.usage)),
        "requests": used.requests,
        "input_tokens": used.input_tokens,
        "cached_tokens": used.cached_tokens,
        "output_tokens": used.output_tokens,
        "cost": spent.total,
        "unpriced": list[JsonValue](spent.unpriced),
    }


def _json(
    report: Totals, by: By, since: datetime | None, path: Path | None, prices: Mapping[str, Price] | None
) -> dict[str, JsonValue]:
    return {
        "by": by,
        "since": None if since is None else since.isoformat(),
        "rows": [{by: g.key, **_priced(g, prices)} for g in report.groups],
        "total": _priced(report.total, prices),
        "threads_read": report.read,
        "unreadable": [{"thread_id": t, "error": e} for t, e in report.unreadable],
        "prices": {"built_in_as_of": PRICES_AS_OF.isoformat(), "file": None if path is None else str(path)},
    }


_COLUMNS = ("calls", "tokens in", "cached", "out", "cost")


def _print(
    report: Totals, by: By, since: datetime | None, path: Path | None, prices: Mapping[str, Price] | None
) -> None:
    if report.groups:
        # The total is the table's footer, so its numbers line up under the rows'.
        table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold", footer_style="bold")
        table.add_column(by, "total", no_wrap=by == "thread", overflow="fold")
        if by == "thread":
            table.add_column("agent", overflow="fold")
        else:
            table.add_column("threads", str(len(report.total.threads)), justify="right")
        for name, total in zip(_COLUMNS, _cells(report.total, prices), strict=True):
            table.add_column(name, total, justify="right", no_wrap=True)
        for group in report.groups:
            second = ", ".join(sorted(group.agents)) if by == "thread" else str(len(group.threads))
            table.add_row(Text(group.key or "(no agent)"), Text(second), *_cells(group, prices))
        table.show_footer = True
        console.print(table)
    counted = len(report.total.threads)
    when = "" if since is None else f" since {since:%Y-%m-%d %H:%M} UTC"
    say(f"{report.read} {'thread' if report.read == 1 else 'threads'} read, {counted} with model calls{when}")
    spent = cost(report.total.usage, prices=prices)
    if spent.unpriced:
        say("* no price for ", ", ".join(spent.unpriced), ": left out of the cost (--prices FILE sets one)")
    mine = f", {len(prices or {})} from {path} over it" if path is not None else ""
    say(f"prices: the built-in table of {PRICES_AS_OF.isoformat()}{mine}")


def _cells(group: Group, prices: Mapping[str, Price] | None) -> tuple[str, str, str, str, str]:
    used, spent = group.used, cost(group.usage, prices=prices)
    if not spent.unpriced:
        dollars = f"${spent.total:.4f}"
    else:  # marked: the footnote names the models without a price
        dollars = f"${spent.total:.4f}*" if spent.by_model else "no price*"
    return (
        f"{used.requests:,}",
        f"{used.input_tokens:,}",
        f"{used.cached_tokens:,}",
        f"{used.output_tokens:,}",
        dollars,
    )
