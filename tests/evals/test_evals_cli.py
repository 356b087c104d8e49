"""`eval add` (a case from a stored thread) and `replay` (a stored thread's decisions against another model)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from pathlib import Path
from typing import cast

import click
import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from threadloom import Agent, Thread, UserError, tool
from threadloom.evals import Case, NextIntent, Suite, load_cases
from threadloom.evals._cli import app, parse_expect_options
from threadloom.models import ScriptedModel
from threadloom.store import SQLiteStore

DEPLOY = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'


def saved(path: Path, thread: Thread) -> Thread:
    """`thread`, once saved in a SQLite file."""

    async def save() -> None:
        store = SQLiteStore(path)
        await store.append(thread, after=0)
        await store.aclose()

    asyncio.run(save())
    return thread


def stored(path: Path) -> Thread:
    """A finished deploy-bot thread saved in a SQLite file."""
    from examples.deploy_bot import build_agent

    thread = build_agent().run_sync(Thread.start("slack_message", {"text": "deploy the backend to production"}))
    return saved(path, thread)


def test_eval_add_cuts_a_stored_thread_into_a_case_that_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).parent.parent.parent
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", [str(root), *sys.path])  # `examples.deploy_bot` importable, however pytest ran
    thread = stored(tmp_path / "t.db")
    cut = thread.events[3].id  # after the prefetched tags, before the model's choice
    cases = tmp_path / "cases.yaml"
    args = ["eval", "add", thread.id, "--at", cut, "--file", str(cases), "--store", f"sqlite:///{tmp_path}/t.db"]
    expect = ["--expect", "intent=deploy_backend", "--expect", "environment=one_of:staging,production"]
    result = CliRunner().invoke(app, [*args, *expect, "--name", "from prod"])
    assert result.exit_code == 0, result.output
    assert "added case 'from prod'" in result.output
    again = CliRunner().invoke(app, [*args, *expect, "--name", "from prod"])
    assert again.exit_code != 0 and "already has a case named" in again.output
    [case] = load_cases(cases)
    assert [e.id for e in case.thread.events] == [e.id for e in thread.events[:4]]
    from examples.deploy_bot import build_agent

    from threadloom.evals import evaluate_sync

    assert evaluate_sync(build_agent(), [case]).pass_rate == 1.0


def test_expect_options_become_an_expect_mapping() -> None:
    options = ["intent=deploy_backend", "tag=regex:^v1", "replicas=range:1,", "n=3", "status=done", "tools=a,b"]
    assert parse_expect_options(options) == {
        "intent": "deploy_backend",
        "fields": {"tag": {"regex": "^v1"}, "replicas": {"range": [1.0, None]}, "n": 3},
        "outcome": {"status": "done", "tools": ["a", "b"]},
    }
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_expect_options(["intent"])


OTHER = ScriptedModel(['{"intent": "deploy_backend", "tag": "v1.2.2", "environment": "production"}', DEPLOY])
"""The model `replay` compares with (imported by the command as `test_evals_cli:OTHER`)."""


def agent() -> Agent:
    from examples.deploy_bot import build_agent

    return build_agent()


def test_replay_shows_step_by_step_where_another_model_decides_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(__file__).parent.parent.parent
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", [str(root), *sys.path])
    thread = stored(tmp_path / "t.db")
    spec = f"{Path(__file__)}:"
    result = CliRunner().invoke(
        app,
        [
            "replay",
            thread.id,
            "--agent",
            spec + "agent",
            "--model",
            spec + "OTHER",
            "--store",
            f"sqlite:///{tmp_path}/t.db",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "differs" in result.output and "v1.2.2" in result.output
    assert "1 of 1 steps differ" in result.output


def test_a_suite_spec_that_is_not_a_suite_is_refused() -> None:
    result = CliRunner().invoke(app, ["eval", "run", f"{Path(__file__)}:agent"])
    assert result.exit_code != 0 and "not a threadloom.evals.Suite" in result.output
    missing = CliRunner().invoke(app, ["eval", "run", "no_such_module:suite"])
    assert missing.exit_code != 0 and "cannot import" in missing.output


def slack_suite() -> Suite:
    """A one-case suite that passes (imported by `eval run` as `test_evals_cli:slack_suite`)."""
    model = ScriptedModel([DEPLOY] * 20, name="scripted")
    case = Case("deploy", Thread.start("slack_message", {"text": "deploy"}), [NextIntent("deploy_backend")])
    return Suite([Agent(name="bot", model=model, tools=[deploy_backend])], [case])


@tool(policy="approval")
def deploy_backend(tag: str, environment: str) -> str:
    """Deploy a tag."""
    return f"deployed {tag} to {environment}"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (["--baseline", "/nonexistent/b.json"], "error: cannot read baseline '/nonexistent/b.json': "),
        (["--baseline", "{bad}"], "is not a baseline: it needs a `cases` mapping"),
        (["--baseline", "{bad-rate}"], "bad-rate.json' is not a baseline: case 'deploy', model 'scripted': '1' is not"),
        (["--json", "/nonexistent/r.json"], "error: --json: no directory /nonexistent to write r.json in\n"),
        (["--html", "/nonexistent/r.html"], "error: --html: no directory /nonexistent to write r.html in\n"),
        (["--save-baseline", "/nonexistent/b.json"], "error: --save-baseline: no directory /nonexistent to write"),
        (["--repeats", "0"], "error: --repeats must be at least 1, got 0\n"),
    ],
    ids=["no-baseline", "bad-baseline", "bad-rate", "json-dir", "html-dir", "save-dir", "repeats"],
)
def test_eval_run_refuses_bad_options_in_one_line_before_running(
    tmp_path: Path, options: list[str], error: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a baseline"}')
    (tmp_path / "bad-rate.json").write_text('{"cases": {"deploy": {"scripted": "1"}}}')
    options = [str(tmp_path / f"{o[1:-1]}.json") if o.startswith("{") else o for o in options]
    result = CliRunner().invoke(app, ["eval", "run", f"{Path(__file__)}:slack_suite", "--no-progress", *options])
    assert result.exit_code == 2, result.output
    assert error in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == ""  # refused before the suite ran: no tables


def test_eval_add_refuses_a_file_in_no_directory_before_reading_the_store(tmp_path: Path) -> None:
    thread = stored(tmp_path / "t.db")
    args = ["eval", "add", thread.id, "--expect", "intent=deploy_backend", "--store", f"sqlite:///{tmp_path}/t.db"]
    result = CliRunner().invoke(app, [*args, "--file", "/nonexistent/c.yaml"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error: --file: no directory /nonexistent to write c.yaml in\n"


def test_eval_add_and_replay_refuse_a_store_that_is_not_there_and_create_none(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path}/typo.db"
    for command in (
        ["eval", "add", "th_1", "--expect", "intent=x", "--file", str(tmp_path / "c.yaml"), "--store", missing],
        [
            "replay",
            "th_1",
            "--agent",
            f"{Path(__file__)}:agent",
            "--model",
            f"{Path(__file__)}:OTHER",
            "--store",
            missing,
        ],
    ):
        result = CliRunner().invoke(app, command)
        assert (result.exit_code, result.stdout) == (1, ""), result.output
        assert result.stderr == (
            f"error: no SQLite store at {tmp_path}/typo.db ({missing}); pass --store or set THREADLOOM_STORE\n"
        )
    assert list(tmp_path.iterdir()) == []


def test_eval_add_and_replay_refuse_a_sqlite_file_that_is_no_store_and_leave_it_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE users (name TEXT)")
    before = path.read_bytes()
    url = f"sqlite:///{path}"
    for command in (
        ["eval", "add", "th_1", "--expect", "intent=x", "--file", str(tmp_path / "c.yaml"), "--store", url],
        ["replay", "th_1", "--agent", f"{Path(__file__)}:agent", "--model", f"{Path(__file__)}:OTHER", "--store", url],
    ):
        result = CliRunner().invoke(app, command)
        assert (result.exit_code, result.stdout) == (1, ""), result.output
        assert result.stderr.startswith(f"error: {str(path)!r} is not a threadloom store"), result.stderr
        assert "\n" not in result.stderr.rstrip("\n")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal, no -shm, no case file


@tool
def set_password(user: str, password: SecretStr) -> str:
    """Set a user's password."""
    return f"password set for {user}"


def stored_secret(path: Path) -> Thread:
    """A thread whose tool call holds a password (kept as the model wrote it), quoted again in the answer."""
    model = ScriptedModel(
        [
            '{"intent": "set_password", "user": "ada", "password": "hunter22-rotated"}',
            '{"intent": "done_for_now", "message": "ada can log in with hunter22-rotated"}',
        ]
    )
    thread = Agent(name="admin", model=model, tools=[set_password]).run_sync(
        Thread.start("user_input", {"text": "reset ada", "api_token": "tok-1234567"})
    )
    return saved(path, thread)


@pytest.mark.parametrize("keep", [False, True], ids=["redacted", "keep-secrets"])
def test_eval_add_writes_secrets_redacted_unless_told_to_keep_them(tmp_path: Path, keep: bool) -> None:
    thread = stored_secret(tmp_path / "t.db")
    cases = tmp_path / "cases.yaml"
    args = ["eval", "add", thread.id, "--file", str(cases), "--store", f"sqlite:///{tmp_path}/t.db"]
    result = CliRunner().invoke(app, [*args, "--expect", "status=done", *(["--keep-secrets"] if keep else [])])
    assert result.exit_code == 0, result.output
    text = cases.read_text()
    assert ("hunter22-rotated" in text, "tok-1234567" in text, "[REDACTED]" in text) == (keep, keep, not keep)
    [case] = load_cases(cases)
    assert [e.id for e in case.thread.events] == [e.id for e in thread.events]
    call, original = case.thread.events[1].data, thread.events[1].data
    assert isinstance(call, dict) and isinstance(original, dict) and call["model"] == original["model"]
    assert call["arguments"] == {"user": "ada", "password": "hunter22-rotated" if keep else "[REDACTED]"}


def test_eval_add_says_keep_secrets_puts_them_in_the_file() -> None:
    group = cast("click.Group", typer.main.get_command(app))
    add = cast("click.Group", group.commands["eval"]).commands["add"]
    [option] = [p for p in add.params if "--keep-secrets" in p.opts]
    assert "the file will hold them" in str(getattr(option, "help", ""))


@pytest.mark.parametrize(
    ("expect", "error"),
    [
        (
            "n=range:abc",
            "error: --expect 'n=range:abc': range is MIN,MAX, numbers (either may be left out), got 'abc'\n",
        ),
        ("n=range:1,2,3", "error: --expect 'n=range:1,2,3': range is MIN,MAX, numbers (either may be left out), got"),
        # Before: written to the file, a case that can never pass (happy) or fails every run (the pattern).
        ("status=happy", "error: expect.outcome.status is a thread status (ready, waiting_approval, waiting_human, "),
        ("tag=regex:([", "error: expect 'tag': the pattern '([' is not a regular expression ("),
        # Before: an option without `=` (or without a key) was typer's usage box, not the one line.
        ("intent", "error: --expect 'intent': write KEY=VALUE, e.g. intent=deploy_backend\n"),
        ("=done", "error: --expect '=done': write KEY=VALUE, e.g. intent=deploy_backend\n"),
    ],
)
def test_eval_add_refuses_an_expectation_it_cannot_read_in_one_line(tmp_path: Path, expect: str, error: str) -> None:
    thread = stored(tmp_path / "t.db")
    args = ["eval", "add", thread.id, "--file", str(tmp_path / "c.yaml"), "--store", f"sqlite:///{tmp_path}/t.db"]
    result = CliRunner().invoke(app, [*args, "--expect", "intent=deploy_backend", "--expect", expect])
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr.startswith(error) and result.stderr.count("\n") == 1
    assert not (tmp_path / "c.yaml").exists()


def bad_case_suite() -> Suite:
    """A suite built from a malformed record (imported by `eval run`)."""
    from threadloom.evals import case_from_record

    return Suite([agent()], [case_from_record({"name": "a", "events": [{"data": 1}], "expect": {"intent": "x"}})])


def test_eval_run_says_in_one_line_what_is_wrong_with_a_suite_s_cases() -> None:
    result = CliRunner().invoke(app, ["eval", "run", f"{Path(__file__)}:bad_case_suite", "--no-progress"])
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr == "error: case 'a': event 0 needs a `type`\n"


def test_eval_add_names_an_unknown_expect_key_it_took_for_a_field(tmp_path: Path) -> None:
    thread = stored(tmp_path / "t.db")
    args = ["eval", "add", thread.id, "--file", str(tmp_path / "c.yaml"), "--store", f"sqlite:///{tmp_path}/t.db"]
    result = CliRunner().invoke(app, [*args, "--expect", "intnt=deploy_backend"])
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    # Before: "error: expect: `fields` needs an `intent`", naming neither the typo nor the known keys.
    assert result.stderr == (
        "error: --expect 'intnt=deploy_backend': `intnt` is not a known key (intent, status, tools), so it was"
        " read as a field of the intent, which needs --expect intent=NAME\n"
    )
    assert not (tmp_path / "c.yaml").exists()


def test_eval_add_refuses_an_at_with_no_such_event_in_one_line(tmp_path: Path) -> None:
    thread = stored(tmp_path / "t.db")
    args = ["eval", "add", thread.id, "--file", str(tmp_path / "c.yaml"), "--store", f"sqlite:///{tmp_path}/t.db"]
    result = CliRunner().invoke(app, [*args, "--expect", "intent=deploy_backend", "--at", "ev_nope"])
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    # Before: typer's usage box, "Invalid value: cannot fork thread ...", over several lines.
    assert (
        result.stderr == f"error: --at 'ev_nope': thread {thread.id!r} has no event 'ev_nope' to cut the case after\n"
    )
    assert not (tmp_path / "c.yaml").exists()
