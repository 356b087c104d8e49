"""Eval cases: a thread and what should come next, written inline, in a YAML / JSONL file, or taken from a store."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any, cast

from threadloom import Event, Thread, UserError

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
        UserError: An unknown key or matcher.
    """
    unknown = set(expect) - {"intent", "fields", "outcome"}
    if unknown:
        raise UserError(f"expect: unknown keys {sorted(unknown)}; use intent, fields and outcome")
    checks: list[Check] = []
    fields = cast("Mapping[str, Any]", expect.get("fields") or {})
    if "intent" in expect:
        checks.append(
            NextIntent(_matcher(expect["intent"], "intent"), **{k: _matcher(v, k) for k, v in fields.items()})
        )
    elif fields:
        raise UserError("expect: `fields` needs an `intent`")
    outcome = cast("Mapping[str, Any] | None", expect.get("outcome"))
    if outcome is not None:
        if set(outcome) - {"status", "tools"}:
            raise UserError(f"expect.outcome: unknown keys {sorted(set(outcome) - {'status', 'tools'})}")
        checks.append(Outcome(status=outcome.get("status"), tools=outcome.get("tools")))
    return checks


def _matcher(value: Any, name: str) -> Any:
    if not isinstance(value, dict):
        return value
    spec = cast("dict[str, Any]", value)
    if len(spec) != 1:
        return spec
    [(kind, argument)] = spec.items()
    if kind == "one_of":
        return OneOf(*argument)
    if kind == "regex":
        return Regex(str(argument))
    if kind == "range":
        low, high = argument
        return Range(float("-inf") if low is None else low, float("inf") if high is None else high)
    raise UserError(f"expect {name!r}: unknown matcher {kind!r}; use one_of, regex or range")


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
        loaded = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        import yaml

        loaded = yaml.safe_load(text)
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
        UserError: A record without a name, a thread or an expectation.
    """
    name = record.get("name")
    if not isinstance(name, str) or not name:
        raise UserError(f"{where}: a case needs a `name`")
    if "thread" in record:
        thread = Thread.from_json(json.dumps(record["thread"]))
    elif record.get("events"):
        events = [Event(str(e["type"]), e.get("data")) for e in cast("list[dict[str, Any]]", record["events"])]
        thread = Thread(events, metadata=cast("dict[str, Any]", record.get("metadata") or {}))
    else:
        raise UserError(f"case {name!r}: give its thread as `events` or `thread`")
    expect = cast("Mapping[str, Any]", record.get("expect") or {})
    checks = parse_expect(expect)
    if not checks:
        raise UserError(f"case {name!r}: `expect` has nothing to check")
    return Case(name, thread, checks, expect=expect)


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
    if at is not None:
        thread = thread.fork(at=at, thread_id=thread.id)
    checks = parse_expect(expect)
    if not checks:
        raise UserError("eval case: `expect` has nothing to check")
    return Case(name or f"{thread_id}@{at or 'end'}", thread, checks, expect=dict(expect))
