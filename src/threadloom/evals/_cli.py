"""`threadloom eval run | add` and `threadloom replay`: typer commands for the main CLI to mount.

    from threadloom.evals._cli import eval_app, replay
    app.add_typer(eval_app, name="eval")
    app.command("replay")(replay)

`app` holds both, for running this module alone (`python -m threadloom.evals`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from threadloom import Agent, StoreError, ThreadloomError, UserError

from ._case import case_from_store, case_record, parse_expect
from ._replay import compare_decisions
from ._report import load_baseline
from ._runner import Suite

if TYPE_CHECKING:
    from threadloom.store import ThreadStore

__all__ = ["app", "eval_app", "replay"]

eval_app = typer.Typer(help="Run eval suites and add cases from stored threads.", no_args_is_help=True)
app = typer.Typer(help="threadloom evals and replays.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

StoreOption = Annotated[str, typer.Option("--store", envvar="THREADLOOM_STORE", help="Store URL.")]
_DEFAULT_STORE = "sqlite:///threadloom.db"


def load_object(spec: str, default: str) -> Any:
    """`module:attribute` or `path/to/file.py:attribute` (attribute `default` when left out), called if callable.

    Raises:
        typer.BadParameter: The spec cannot be imported.
    """
    target, _, attribute = spec.partition(":")
    attribute = attribute or default
    sys.path.insert(0, ".")  # so `examples.deploy_bot_evals:suite` works from a checkout
    try:
        if target.endswith(".py"):
            found = importlib.util.spec_from_file_location(Path(target).stem, target)
            if found is None or found.loader is None:
                raise ImportError(f"cannot load {target!r}")
            module = importlib.util.module_from_spec(found)
            sys.modules[found.name] = module
            found.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        value: Any = getattr(module, attribute)
    except (ImportError, AttributeError, OSError) as exc:
        raise typer.BadParameter(f"cannot import {spec!r}: {exc}") from exc
    return value() if callable(value) and not isinstance(value, Agent | Suite) else value


@eval_app.command("run")
def run(
    suite_spec: Annotated[
        str, typer.Argument(metavar="SUITE", help="module:attribute or file.py:attribute of a Suite.")
    ],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="Fail (exit 1) when a case passes less often than here.")
    ] = None,
    tolerance: Annotated[float, typer.Option(help="How far a pass rate may drop below the baseline.")] = 0.0,
    save_baseline: Annotated[Path | None, typer.Option("--save-baseline", help="Write this run's pass rates.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="Write the report as one HTML page.")] = None,
    repeats: Annotated[int | None, typer.Option(help="Attempts per case (the suite's own by default).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Run an eval suite: print the tables, write the reports, compare with a baseline."""
    # Everything that can be refused is refused before the suite runs: a run can take minutes and
    # money, and a report with nowhere to go would be lost at the end of it.
    if repeats is not None and repeats < 1:
        _fail(f"--repeats must be at least 1, got {repeats}", code=2)
    for option, path in (("--json", json_path), ("--html", html_path), ("--save-baseline", save_baseline)):
        if path is not None:
            _writable(option, path)
    try:
        expected = load_baseline(baseline) if baseline is not None else None
    except UserError as exc:
        _fail(str(exc), code=2)
    try:
        suite = load_object(suite_spec, "suite")
    except UserError as exc:  # the suite's own cases are misused (a broken case file): one line, as the rest
        _fail(str(exc), code=2)
    if not isinstance(suite, Suite):
        raise typer.BadParameter(f"{suite_spec!r} gives a {type(suite).__name__}, not a threadloom.evals.Suite")
    if repeats is not None:
        suite = Suite(
            suite.agents,
            suite.cases,
            title=suite.title,
            repeats=repeats,
            concurrency=suite.concurrency,
            retries=suite.retries,
            prices=suite.prices,
        )
    console = Console()
    report = suite.run_sync(progress=progress)
    report.print(console)
    if json_path is not None:
        json_path.write_text(report.to_json(), encoding="utf-8")
    if html_path is not None:
        html_path.write_text(report.to_html(), encoding="utf-8")
    if save_baseline is not None:
        report.save_baseline(save_baseline)
    if expected is None:
        return
    regressions = report.regressions(expected, tolerance=tolerance)
    if regressions:
        console.print(f"[red]{len(regressions)} cases regressed against {baseline}:[/red]")
        for regression in regressions:
            console.print(f"  {regression}", markup=False, soft_wrap=True)  # one line a case, for grep
        raise typer.Exit(1)
    console.print(f"[green]no regressions against {baseline}[/green]")


@eval_app.command("add")
def add(
    thread_id: str,
    expect: Annotated[
        list[str],
        typer.Option(
            "--expect",
            help="intent=NAME, FIELD=VALUE (JSON or text; one_of:a,b  regex:PATTERN  range:MIN,MAX), status=, tools=a,b",
        ),
    ],
    file: Annotated[Path, typer.Option("--file", help="The YAML case file to append to.")],
    at: Annotated[str | None, typer.Option("--at", help="The last event the case keeps.")] = None,
    name: Annotated[str | None, typer.Option(help="The case's name (THREAD_ID@EVENT_ID).")] = None,
    keep_secrets: Annotated[
        bool,
        typer.Option(
            "--keep-secrets",
            help="Copy secret values (secret-looking keys, SecretStr arguments) as they are: the file will hold them.",
        ),
    ] = False,
    store: StoreOption = _DEFAULT_STORE,
) -> None:
    """Add a case to a case file from a stored thread, cut after event --at, with what should come next.

    Secrets are written as [REDACTED], as `threads show` prints them: a case file is committed.
    """
    import yaml

    from threadloom._thread_redaction import ThreadRedaction
    from threadloom.context import DEFAULT_SECRET_PATTERN
    from threadloom.models.cassette import dump

    try:
        expectation = parse_expect_options(expect)
        parse_expect(expectation)  # refused before the store is read, as a case file's would be
    except UserError as exc:
        _fail(str(exc), code=2)
    _writable("--file", file)
    url = _existing_store(store)

    async def load() -> dict[str, Any]:
        opened = await _opened(url)
        try:
            case = await case_from_store(opened, thread_id, at=at, name=name, expect=expectation)
        finally:
            await opened.aclose()
        if not keep_secrets:  # no agent named here: secrets by the default pattern, as `threads show` finds them
            redaction = ThreadRedaction.found_in(case.thread.events, DEFAULT_SECRET_PATTERN)
            case = dataclasses.replace(case, thread=redaction.thread(case.thread))
        return case_record(case)

    try:
        record = asyncio.run(load())
    except UserError as exc:  # the case cannot be cut at --at (the expectation was checked above): misuse
        _fail(f"--at {at!r}: {exc}" if at is not None else str(exc), code=2)
    except ThreadloomError as exc:  # no such thread, a store that failed: one line, as every command
        _fail(str(exc))
    existing: list[Any] = (yaml.safe_load(file.read_text(encoding="utf-8")) or []) if file.exists() else []
    if any(isinstance(item, dict) and cast("dict[str, Any]", item).get("name") == record["name"] for item in existing):
        raise typer.BadParameter(f"{str(file)!r} already has a case named {record['name']!r}; pass --name")
    existing.append(record)
    file.write_text(dump(existing), encoding="utf-8")  # the cassettes' YAML: text blocks read as written
    Console().print(f"added case {record['name']!r} to {file}", markup=False)


def _writable(option: str, path: Path) -> None:
    """End the command as misuse unless `path`'s directory is there to write the file in."""
    if not path.parent.is_dir():
        _fail(f"{option}: no directory {path.parent} to write {path.name} in", code=2)


def _existing_store(url: str) -> str:
    """`url`, once it names a store that exists: reading a mistyped SQLite path must not create it."""
    from threadloom.cli._app import existing_store  # imported here for the reason `_fail` gives

    return existing_store(url)


async def _opened(url: str) -> ThreadStore:
    """The store at `url` as it is: a database that is no store is refused unchanged (no tables added)."""
    from threadloom.cli._app import hide_password
    from threadloom.store import open_store

    try:
        return await open_store(url, upgrade=False)
    except StoreError as exc:
        _fail(hide_password(url, str(exc)))


def _fail(message: str, code: int = 1) -> NoReturn:
    """`error: message` on one line of stderr, and exit `code` (1: it failed, 2: misuse), as every command does."""
    # Imported here, not at the top: the `threadloom` command imports this module to mount it.
    from threadloom.cli._app import fail

    fail(message, code)


def parse_expect_options(options: list[str]) -> dict[str, Any]:
    """`--expect KEY=VALUE` options as a case file's `expect` mapping.

    Raises:
        UserError: An option without `=` or a key, or a matcher it cannot read (`range:abc`).
    """
    expect: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    first_field = ""  # the first option read as a field: named when no intent comes to hold it
    outcome: dict[str, Any] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise UserError(f"--expect {option!r}: write KEY=VALUE, e.g. intent=deploy_backend")
        try:
            if key == "intent":
                expect["intent"] = _value(value)
            elif key == "status":
                outcome["status"] = value
            elif key == "tools":
                outcome["tools"] = [t for t in value.split(",") if t]
            else:
                fields[key] = _value(value)
                first_field = first_field or option
        except ValueError as exc:
            raise UserError(f"--expect {option!r}: {exc}") from exc
    if fields and "intent" not in expect:  # most likely a mistyped key, so say how it was read
        key = first_field.partition("=")[0]
        raise UserError(
            f"--expect {first_field!r}: `{key}` is not a known key (intent, status, tools), so it was read"
            " as a field of the intent, which needs --expect intent=NAME"
        )
    if fields:
        expect["fields"] = fields
    if outcome:
        expect["outcome"] = outcome
    return expect


def _value(text: str) -> Any:
    kind, sep, rest = text.partition(":")
    if sep and kind == "one_of":
        return {"one_of": [_scalar(v) for v in rest.split(",")]}
    if sep and kind == "regex":
        return {"regex": rest}
    if sep and kind == "range":
        low, _, high = rest.partition(",")
        try:
            return {"range": [float(low) if low else None, float(high) if high else None]}
        except ValueError as exc:
            raise ValueError(f"range is MIN,MAX, numbers (either may be left out), got {rest!r}") from exc
    return _scalar(text)


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def replay(
    thread_id: str,
    agent_spec: Annotated[str, typer.Option("--agent", help="module:attribute of the thread's Agent.")],
    model: Annotated[str, typer.Option("--model", help="The model to compare: a model string or module:attribute.")],
    store: StoreOption = _DEFAULT_STORE,
) -> None:
    """Re-ask a stored thread's model steps with another model and show, step by step, where decisions differ."""
    from threadloom.models import Model, infer_model

    url = _existing_store(store)
    agent = load_object(agent_spec, "agent")
    if not isinstance(agent, Agent):
        raise typer.BadParameter(f"{agent_spec!r} gives a {type(agent).__name__}, not an Agent")
    other = cast("Model | None", load_object(model, "model") if _names_an_object(model) else None)
    if other is None:
        try:
            other = infer_model(model)
        except ThreadloomError as exc:
            raise typer.BadParameter(str(exc)) from exc

    async def work() -> list[Any]:
        opened = await _opened(url)
        try:
            thread = await opened.load(thread_id)
        finally:
            await opened.aclose()
        return await compare_decisions(agent, thread, other)

    try:
        steps = asyncio.run(work())
    except ThreadloomError as exc:
        raise typer.BadParameter(str(exc)) from exc
    table = Table(title=f"{thread_id}: {agent.model.name} (recorded) vs {other.name}")
    for column in ("step", "recorded", "replayed", ""):
        table.add_column(column)
    for step in steps:
        verdict = Text("same", "green") if step.same else Text("differs", "red")
        table.add_row(str(step.step), Text(step.recorded), Text(step.replayed), verdict)
    Console().print(table)
    differ = sum(not step.same for step in steps)
    Console().print(f"{differ} of {len(steps)} steps differ")


def _names_an_object(spec: str) -> bool:
    """`package.module:attribute` or `file.py:attribute`, not a model string such as `openai:gpt-4.1`."""
    target = spec.partition(":")[0]
    return ":" in spec and ("." in target or "/" in target)


app.command("replay")(replay)
