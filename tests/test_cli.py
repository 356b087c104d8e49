"""The `threadloom threads` commands on a real SQLite file: decide, answer, fork, list, with idempotency keys."""

import re
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

import threadloom
from cli_support import data_of, get, launch
from threadloom import ThreadDecodeError
from threadloom.cli import app

WORKERS = Path(__file__).parent / "workers"
ASK = '{"intent": "request_human_input", "question": "Which environment?"}'


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/threads.db"
    monkeypatch.setenv("THREADLOOM_STORE", url)
    monkeypatch.setenv("COLUMNS", "200")
    if str(WORKERS) not in sys.path:
        sys.path.insert(0, str(WORKERS))
    return url


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_approve_with_edits_and_a_key_decides_once(url: str) -> None:
    thread = launch(url)
    assert thread.status == "waiting_approval"
    out = invoke("threads", "approve", thread.id, "--edit", "amount_cents=100", "--key", "click-1")
    assert f"thread {thread.id} is ready" in out
    again = invoke("threads", "approve", thread.id, "--edit", "amount_cents=100", "--key", "click-1")
    assert f"thread {thread.id} is ready" in again
    approved = get(url, thread.id)
    [approval] = [e for e in approved.events if e.type == "approval"]
    assert approval.data == {"call_id": thread.events[1].id, "approved": True, "edits": {"amount_cents": 100}}


def test_a_key_reused_for_another_decision_is_refused_in_one_line(url: str) -> None:
    asked = launch(url, ASK)
    thread = launch(url)
    invoke("threads", "approve", thread.id, "--edit", "amount_cents=100", "--key", "click-1")
    decided = get(url, thread.id)
    for command in (
        ["threads", "approve", thread.id, "--edit", "amount_cents=999", "--key", "click-1"],
        ["threads", "approve", thread.id, thread.events[1].id, "--key", "click-1"],
        ["threads", "reject", thread.id, "--feedback", "no", "--key", "click-1"],
        ["threads", "respond", thread.id, "yes", "--key", "click-1"],
    ):
        result = CliRunner().invoke(app, command)
        assert (result.exit_code, result.stdout) == (1, ""), command
        assert result.stderr == (
            f"error: idempotency key 'click-1' was already used on thread {thread.id!r} for a different request;"
            " use a new key for a new request\n"
        )
    assert get(url, thread.id).events == decided.events
    invoke("threads", "respond", asked.id, "staging", "--key", "answer-1")
    result = CliRunner().invoke(app, ["threads", "respond", asked.id, "production", "--key", "answer-1"])
    assert result.exit_code == 1 and "already used" in result.stderr


def test_reject_sends_feedback(url: str) -> None:
    thread = launch(url)
    assert "is ready" in invoke("threads", "reject", thread.id, "--feedback", "use store credit")
    assert get(url, thread.id).events[-1].data == {
        "call_id": thread.events[1].id,
        "approved": False,
        "feedback": "use store credit",
    }


def test_respond_answers_the_pending_request(url: str) -> None:
    thread = launch(url, ASK)
    assert thread.status == "waiting_human"
    assert "is ready" in invoke("threads", "respond", thread.id, "staging", "--key", "answer-1")
    assert "is ready" in invoke("threads", "respond", thread.id, "staging", "--key", "answer-1")
    assert [e.type for e in get(url, thread.id).events].count("human_response") == 1


@pytest.mark.parametrize("type_", ["approval", "tool_call", "human_response", "failed"])
def test_send_event_refuses_the_types_only_threadloom_writes(url: str, type_: str) -> None:
    thread = launch(url)
    forged = (
        f'{{"call_id": "{thread.events[1].id}", "approved": true, "by": "key:boss", "edits": {{"amount_cents": 1}}}}'
    )
    result = CliRunner().invoke(app, ["threads", "send-event", thread.id, type_, forged])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: events of type {type_!r} are written by threadloom itself; "
        "use threads approve, reject, respond or cancel instead\n"
    )
    assert get(url, thread.id).events == thread.events


def test_fork_and_list_by_status_and_agent(url: str) -> None:
    thread = launch(url)
    fork_id = invoke("threads", "fork", thread.id, "--at", thread.events[0].id).strip()
    assert get(url, fork_id).metadata["forked_from"] == thread.id
    ready = invoke("threads", "ls", "--status", "ready", "--agent", "support")
    assert fork_id in ready and thread.id not in ready
    assert invoke("threads", "ls", "--agent", "nobody").count("th_") == 0
    assert invoke("threads", "ls", "--updated-after", "2000-01-01T00:00:00").count("th_") == 2
    assert invoke("threads", "ls", "--updated-after", "2999-01-01T00:00:00+00:00").count("th_") == 0


def test_mistakes_are_one_line_on_stderr(url: str) -> None:
    thread = launch(url)
    answered = CliRunner().invoke(app, ["threads", "respond", thread.id, "yes"])
    assert answered.exit_code == 1 and answered.stdout == ""
    assert answered.stderr.startswith(f"error: cannot respond to {thread.events[1].id!r} in thread {thread.id!r}")
    assert answered.stderr.count("\n") == 1  # one line, no traceback
    assert CliRunner().invoke(app, ["threads", "ls", "--status", "sleepy"]).exit_code == 2
    missing = CliRunner().invoke(app, ["threads", "show", "th_nope"])
    assert (missing.exit_code, missing.stderr) == (1, "error: no thread 'th_nope' in the store\n")


def test_an_edit_is_checked_against_the_tool_when_the_agents_are_given(url: str) -> None:
    thread = launch(url)
    refused = CliRunner().invoke(
        app, ["threads", "approve", thread.id, "--edit", "amount=100", "--agents", "cli_support:agent"]
    )
    assert refused.exit_code == 2
    assert refused.stderr == (
        "error: edits to 'refund' do not fit its parameters: no parameter 'amount'; "
        "parameters: order_id: str, amount_cents: int\n"
    )
    assert get(url, thread.id).events == thread.events
    invoke("threads", "approve", thread.id, "--edit", "amount_cents=100", "--agents", "cli_support:agent")
    assert data_of(get(url, thread.id), "approval") == {
        "call_id": thread.events[1].id,
        "approved": True,
        "edits": {"amount_cents": 100},
    }


def test_every_command_the_docs_and_docstrings_name_exists() -> None:
    root = Path(__file__).parent.parent
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    commands = set(group.commands)
    texts = [root / "README.md", *(root / "docs").glob("*.md"), *(root / "src").rglob("*.py")]
    named = {
        (path.name, word)
        for path in texts
        for word in re.findall(r"`threadloom ([a-z][a-z-]*)", " ".join(path.read_text().split()))
    }
    assert sorted((name, word) for name, word in named if word not in commands) == []


def test_version() -> None:
    assert threadloom.__version__ == "0.1.0"
    assert invoke("--version") == f"threadloom {threadloom.__version__}\n"


def test_worker_needs_importable_agents(url: str) -> None:
    result = CliRunner().invoke(app, ["worker", "--agents", "no_such_module:agent"])
    assert result.exit_code == 2 and "cannot import 'no_such_module:agent'" in result.output


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (["worker", "--agents", "cli_support:refund"], "'cli_support:refund' gives a Tool, not an Agent"),
        (["worker", "--agents", ":"], "cannot import ':': write module:attribute"),
        (["worker", "--lease-seconds", "nan"], "error: --lease-seconds must be a number above 0, got nan\n"),
        (["worker", "--lease-seconds", "0"], "error: --lease-seconds must be a number above 0, got 0.0\n"),
        (["worker", "--poll-seconds", "-1"], "error: --poll-seconds must be a number above 0, got -1.0\n"),
        (["worker", "--concurrency", "0"], "error: --concurrency must be at least 1, got 0\n"),
        (["serve", "--port", "99999"], "error: --port must be 0 to 65535, got 99999\n"),
        (["serve", "--concurrency", "0"], "error: --concurrency must be at least 1, got 0\n"),
        (["serve", "--public-url", "inbox.example.com"], "error: --public-url must be an http(s) URL, got "),
    ],
    ids=[
        "tool",
        "no-module",
        "lease-nan",
        "lease-0",
        "poll-negative",
        "concurrency",
        "port",
        "serve-concurrency",
        "url",
    ],
)
def test_a_bad_option_is_misuse_in_one_line_and_starts_nothing(
    url: str, tmp_path: Path, command: list[str], error: str
) -> None:
    store = f"sqlite:///{tmp_path}/new.db"
    agents = [] if "--agents" in command else ["--agents", "cli_support:agent"]
    result = CliRunner().invoke(app, [*command, *agents, "--store", store])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback
    assert error in result.stderr and "Traceback" not in result.output
    assert result.stdout == "" and not (tmp_path / "new.db").exists()


def test_the_worker_never_prints_the_store_password() -> None:
    from threadloom.cli._app import hide_password, shown

    assert shown("postgresql://app:s3cret@db/app?sslmode=require") == "postgresql://app:***@db/app?sslmode=require"
    assert shown("sqlite:///threadloom.db") == "sqlite:///threadloom.db"
    assert shown("postgresql://app@db/app?password=s3cret&sslmode=require") == (
        "postgresql://app@db/app?password=***&sslmode=require"
    )
    # `keys create` and `keys revoke` name the store this way
    in_query = "postgresql://app@db/app?password=s3cret"
    assert hide_password(in_query, f"no key in {in_query}") == "no key in postgresql://app@db/app?password=***"


def test_a_password_given_as_a_query_parameter_is_never_printed(tmp_path: Path) -> None:
    # Nothing listens on port 1: the banner is printed, then the store fails to open.
    store = "postgresql://app@127.0.0.1:1/app?password=S3cretPW"
    result = CliRunner().invoke(app, ["worker", "--store", store, "--agents", "cli_support:agent"])
    assert result.exit_code == 1
    assert "S3cretPW" not in result.output
    assert "postgresql://app@127.0.0.1:1/app?password=***" in result.stdout
    keys = CliRunner().invoke(app, ["keys", "ls", "--store", "postgresql://app@127.0.0.1:1/app?password=S3cretPW"])
    assert keys.exit_code == 1 and "S3cretPW" not in keys.output


def test_a_worker_whose_store_cannot_open_says_so_in_one_line(url: str, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/no-such-dir/threads.db"
    result = CliRunner().invoke(app, ["worker", "--store", store, "--agents", "deploy_agent:agent"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("error: cannot open SQLite store")


@pytest.mark.parametrize(
    "command",
    [
        ["threads", "ls"],
        ["threads", "show", "th_1"],
        ["threads", "render", "th_1", "--agents", "cli_support:agent"],
        ["threads", "approve", "th_1"],
        ["threads", "cancel", "th_1"],
        ["threads", "send-event", "th_1", "ticket_note"],
    ],
)
def test_a_command_on_a_store_that_is_not_there_refuses_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.delenv("THREADLOOM_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no SQLite store at {tmp_path}/threadloom.db (sqlite:///threadloom.db); "
        "pass --store or set THREADLOOM_STORE\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_thread_is_named_with_its_event_when_the_error_knows_it() -> None:
    from threadloom.cli._app import decode_problem, unreadable

    named = ThreadDecodeError("bad JSON in the data: Expecting value", event_id="ev_2")
    assert (
        unreadable("th_1", named) == "thread 'th_1' cannot be read: event 'ev_2': bad JSON in the data: Expecting value"
    )
    assert decode_problem(ValueError("Invalid isoformat string: 'x'")) == "ValueError: Invalid isoformat string: 'x'"
    whole = ThreadDecodeError("thread 'th_1', event 'ev_2': bad JSON")
    assert unreadable("th_1", whole) == "thread 'th_1', event 'ev_2': bad JSON"


def test_a_store_url_of_no_known_kind_is_misuse_and_its_password_is_never_printed() -> None:
    result = CliRunner().invoke(app, ["threads", "ls", "--store", "mysql://app:s3cret@db/app"])
    assert result.exit_code == 2
    assert "s3cret" not in result.output and "mysql://app:***@db/app" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["threads", "render", "th_1"], "Missing option '--agents'"),
        (["threads", "ls", "--limit", "0"], "Invalid value for '--limit'"),
        (["threads", "ls", "--status", "waiting"], "Invalid value for --status"),
        (["worker", "--log-format", "xml", "--agents", "cli_support:agent"], "Invalid value for --log-format"),
        (["threads", "nosuch"], "No such command 'nosuch'"),
    ],
)
def test_a_misused_command_says_so_in_one_line_exit_2(args: list[str], said: str) -> None:
    # Before: typer's box of four to six lines, where every other error of the command is one line.
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {said}") and line.endswith(" --help'"), line
    assert result.stdout == ""
