"""Eval cases: a thread and what should come next, written inline, in a YAML / JSONL file, or taken from a store."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any, cast, get_args

from threadloom import Event, Status, Thread, ThreadDecodeError, UserError

from ._checks import Check, NextIntent, OneOf, Outcome, Range, Regex

__all__ = ["Case", "case_from_record", "case_from_store", "case_record", "load_cases", "parse_expect"]


@dataclass(frozen=True, slots=True)
class Case:
    """One eval case: a thread (often stopped in the middle of a run) and the checks on what comes next.

    Example:
        ```python
        from threadloom import Thread
        from threadloom.evals import Case, NextIntent

        case = Case("greets", Thread.start("user_input", {"text": "hi"}), [NextIntent("done_for_now")])
        assert not case.needs_run
        ```
    """

    name: str
    """Unique within a suite; how reports and the baseline name the case."""
    thread: Thread
    """The thread the agent continues."""
    checks: Sequence[Check]
    """What the next step (or the run) must satisfy; every check must pass."""
    _: KW_ONLY
    expect: Mapping[str, Any] | None = None
    """The file form of `checks`, kept so the case can be written back (`case_record`)."""

    @property
    def needs_run(self) -> bool:
        """True when a check looks at the whole run, so the runner runs the agent to its stop."""
        return any(check.needs_run for check in self.checks)


def parse_expect(expect: Mapping[str, Any]) -> list[Check]:
    """Checks from a case file's `expect` mapping.

    The keys: `intent` (a name, or `{one_of: [...]}`), `fields` (each an exact value, or
    `{one_of: [...]}`, `{regex: "..."}`, `{range: [min, max]}` with `null` for an open end), and
    `outcome` (`{status: ..., tools: [...]}`).

    Example:
        ```python
        from threadloom.evals import NextIntent, OneOf, parse_expect

        checks = parse_expect({"intent": "deploy_backend", "fields": {"environment": {"one_of": ["staging"]}}})
        assert checks == [NextIntent("deploy_backend", environment=OneOf("staging"))]
        ```

    Raises:
        UserError: An unknown key or matcher, or a value of the wrong shape.
    """
    given = cast(object, expect)  # read from a file: any shape
    if not isinstance(given, Mapping):
        raise UserError(f"`expect` is a mapping of intent, fields and outcome, got {given!r}")
    unknown = set(expect) - {"intent", "fields", "outcome"}
    if unknown:
        raise UserError(f"expect: unknown keys {sorted(unknown)}; use intent, fields and outcome")
    checks: list[Check] = []
    given: object = expect.get("fields") or {}
    if not isinstance(given, Mapping):
        raise UserError(f"expect.fields is a mapping of field -> value, got {given!r}")
    fields = cast("Mapping[str, Any]", given)
    if "intent" in expect:
        checks.append(
            NextIntent(_matcher(expect["intent"], "intent"), **{k: _matcher(v, k) for k, v in fields.items()})
        )
    elif fields:
        raise UserError("expect: `fields` needs an `intent`")
    outcome: object = expect.get("outcome")
    if outcome is not None:
        checks.append(_outcome(outcome))
    return checks


def _outcome(given: object) -> Outcome:
    if not isinstance(given, Mapping):
        raise UserError(f"expect.outcome is a mapping of status and tools, got {given!r}")
    outcome = cast("Mapping[str, Any]", given)
    if set(outcome) - {"status", "tools"}:
        raise UserError(f"expect.outcome: unknown keys {sorted(set(outcome) - {'status', 'tools'})}")
    status, tools = outcome.get("status"), outcome.get("tools")
    statuses = get_args(Status)  # the thread's own list: a status no thread reaches could never pass
    if status is not None and status not in statuses:
        raise UserError(f"expect.outcome.status is a thread status ({', '.join(statuses)}), got {status!r}")
    if tools is not None and not (
        isinstance(tools, list) and all(isinstance(t, str) for t in cast("list[Any]", tools))
    ):
        raise UserError(f"expect.outcome.tools is a list of tool names, got {tools!r}")
    return Outcome(status=status, tools=cast("list[str] | None", tools))


def _matcher(value: Any, name: str) -> Any:
    if not isinstance(value, dict):
        return value
    spec = cast("dict[str, Any]", value)
    if len(spec) != 1:
        return spec
    [(kind, argument)] = spec.items()
    if kind == "one_of":
        if not isinstance(argument, list):
            raise UserError(f"expect {name!r}: one_of is a list of values, got {argument!r}")
        return OneOf(*cast("list[Any]", argument))
    if kind == "regex":
        if not isinstance(argument, str):
            raise UserError(f"expect {name!r}: regex is a pattern, got {argument!r}")
        try:  # compiled now, so a bad pattern is refused before the run, not failed in every attempt
            re.compile(argument)
        except re.error as exc:
            raise UserError(f"expect {name!r}: the pattern {argument!r} is not a regular expression ({exc})") from exc
        return Regex(argument)
    if kind == "range":
        ends = cast("list[Any]", argument) if isinstance(argument, list) else []
        if len(ends) != 2 or not all(_bound(end) for end in ends):
            raise UserError(f"expect {name!r}: range is [min, max] (null for an open end), got {argument!r}")
        low, high = ends
        return Range(float("-inf") if low is None else low, float("inf") if high is None else high)
    raise UserError(f"expect {name!r}: unknown matcher {kind!r}; use one_of, regex or range")


def _bound(value: object) -> bool:
    """A range's end: a number (not a bool), or None for an open end."""
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def load_cases(path: str | os.PathLike[str]) -> list[Case]:
    """The cases of a YAML file (a list of cases) or a JSONL file (one case a line).

    Each case has a `name`, its thread as `events` (a list of `{type, data}`, the first one starting
    the thread) or `thread` (a thread's JSON, as `eval add` writes), and `expect` (see `parse_expect`).

    Raises:
        UserError: The file cannot be read as cases; the message names the case.
    """
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    loaded: Any
    if file.suffix == ".jsonl":
        loaded = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                loaded.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise UserError(f"{file.name!r} line {number} is not JSON: {exc}") from exc
    else:
        import yaml

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UserError(f"{file.name!r} is not YAML: {exc}") from exc
    if not isinstance(loaded, list | None):
        raise UserError(f"{str(file)!r}: a case file holds a list of cases")
    records = cast("list[Any]", loaded or [])
    cases = [
        case_from_record(cast("Mapping[str, Any]", record), f"{file.name}[{i}]") for i, record in enumerate(records)
    ]
    names = [case.name for case in cases]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UserError(f"{str(file)!r}: case names repeat: {duplicates}")
    return cases


def case_from_record(record: Mapping[str, Any], where: str = "case") -> Case:
    """A case from one record of a case file (see `load_cases`).

    Raises:
        UserError: A record without a name, a thread or an expectation, or with one of the wrong
            shape; the message names the case.
    """
    given = cast(object, record)  # read from a file: any shape
    if not isinstance(given, Mapping):
        raise UserError(f"{where}: a case is a mapping with a `name`, got {given!r}")
    name = record.get("name")
    if not isinstance(name, str) or not name:
        raise UserError(f"{where}: a case needs a `name`")
    try:
        thread = _thread(record)
        expect = cast("Mapping[str, Any]", record.get("expect") or {})
        checks = parse_expect(expect)
    except UserError as exc:
        raise UserError(f"case {name!r}: {exc}") from exc
    if not checks:
        raise UserError(f"case {name!r}: `expect` has nothing to check")
    return Case(name, thread, checks, expect=expect)


def _thread(record: Mapping[str, Any]) -> Thread:
    """A case record's thread, from its `thread` (a thread's JSON) or its `events` and `metadata`."""
    if "thread" in record:
        try:
            return Thread.from_json(json.dumps(record["thread"]))
        except (ThreadDecodeError, TypeError, ValueError) as exc:
            raise UserError(f"its `thread` is not a thread: {exc}") from exc
    items = record.get("events")
    if not items:
        raise UserError("give its thread as `events` or `thread`")
    if not isinstance(items, list):
        raise UserError(f"`events` is a list of {{type, data}}, got {items!r}")
    events: list[Event] = []
    for i, item in enumerate(cast("list[Any]", items)):
        if not isinstance(item, dict):
            raise UserError(f"event {i} is {item!r}, not a {{type, data}} mapping")
        event = cast("dict[str, Any]", item)
        if "type" not in event:
            raise UserError(f"event {i} needs a `type`")
        events.append(Event(str(event["type"]), event.get("data")))
    metadata: object = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise UserError(f"`metadata` is a mapping, got {metadata!r}")
    return Thread(events, metadata=cast("dict[str, Any]", metadata))


def case_record(case: Case) -> dict[str, Any]:
    """A case as a case-file record (the thread whole, ids and times kept).

    Raises:
        UserError: The case was built in code with checks only (no `expect=` to write).
    """
    if case.expect is None:
        raise UserError(f"case {case.name!r} has no `expect` mapping to write; build it with expect=")
    return {"name": case.name, "thread": json.loads(case.thread.to_json()), "expect": dict(case.expect)}


async def case_from_store(
    store: Any, thread_id: str, *, at: str | None = None, name: str | None = None, expect: Mapping[str, Any]
) -> Case:
    """A case from a thread saved in a store, cut after event `at` (the whole thread when None).

    Args:
        store: A `ThreadStore` (anything with `async load(thread_id)`).
        thread_id: The stored thread.
        at: The id of the last event the case keeps; what the model did next is what is judged.
        name: The case's name (`THREAD_ID@EVENT_ID` when None).
        expect: What should come next (see `parse_expect`).

    Raises:
        ThreadNotFound: No such thread.
        UserError: No such event, or nothing to check.
    """
    thread: Thread = await store.load(thread_id)
    if at is not None and all(event.id != at for event in thread.events):
        raise UserError(f"thread {thread_id!r} has no event {at!r} to cut the case after")
    if at is not None:
        thread = thread.fork(at=at, thread_id=thread.id)
    checks = parse_expect(expect)
    if not checks:
        raise UserError("eval case: `expect` has nothing to check")
    return Case(name or f"{thread_id}@{at or 'end'}", thread, checks, expect=dict(expect))
