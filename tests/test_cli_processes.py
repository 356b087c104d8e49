"""The `threadloom` command through its real entry point, in processes of its own, on SQLite and PostgreSQL.

These are the commands docs/runtime.md's CLI section shows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cli_support import TESTS, THREADLOOM, agent, cli, corrupt, data_of, get, launch
from threadloom import Thread
from workers.started import wait_started


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of each durable kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/threads.db"
    return request.getfixturevalue("postgres_url")


def test_an_operator_finds_shows_and_approves_a_thread(url: str) -> None:
    thread = launch(url)
    listed = cli("threads", "ls", "--store", url)
    assert listed.returncode == 0, listed.stderr
    assert thread.id in listed.stdout.split()  # whole, at 80 columns
    assert "approval to run `refund`" in " ".join(listed.stdout.split())

    [row] = [json.loads(line) for line in cli("threads", "ls", "--json", "--store", url).stdout.splitlines()]
    assert (row["thread_id"], row["status"], row["waiting_for"]) == (
        thread.id,
        "waiting_approval",
        "approval to run `refund`",
    )

    shown = cli("threads", "show", thread.id, "--store", url)
    assert shown.returncode == 0, shown.stderr
    call = thread.pending
    assert call is not None
    assert f"approve: threadloom threads approve {thread.id} {call.id} --store {url}" in shown.stdout.replace("'", "")
    assert '"amount_cents": 4599' in shown.stdout

    approved = cli("threads", "approve", thread.id, "--edit", "amount_cents=100", "--store", url)
    assert approved.returncode == 0, approved.stderr
    assert f"thread {thread.id} is ready" in approved.stdout
    assert data_of(get(url, thread.id), "approval") == {
        "call_id": call.id,
        "approved": True,
        "edits": {"amount_cents": 100},
    }


@pytest.mark.parametrize(
    ("edit", "problem"),
    [("amount=100", "no parameter 'amount'"), ('amount_cents="lots"', "amount_cents: Input should be a valid integer")],
)
def test_an_edit_that_does_not_fit_the_tool_is_refused_and_nothing_is_recorded(
    url: str, edit: str, problem: str
) -> None:
    thread = launch(url)
    refused = cli("threads", "approve", thread.id, "--edit", edit, "--agents", "cli_support:agent", "--store", url)
    assert refused.returncode == 2
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: edits to 'refund' do not fit its parameters: " + problem)
    assert line.endswith("parameters: order_id: str, amount_cents: int")
    assert refused.stdout == ""
    assert get(url, thread.id).events == thread.events


def test_a_thread_with_a_corrupted_row_is_named_in_one_line(url: str) -> None:
    healthy = launch(url, text="the healthy one")
    broken = launch(url, text="the broken one")
    corrupt(url, broken.id, seq=1)  # its first event

    for command in (
        ["show", broken.id],
        ["approve", broken.id],
        ["render", broken.id, "--agents", "cli_support:agent"],
    ):
        result = cli("threads", *command, "--store", url)
        assert result.returncode == 1, result.stderr
        [line] = result.stderr.splitlines()  # one line, no traceback
        assert line.startswith("error: ") and broken.id in line and "Unterminated string" in line
        assert "Traceback" not in result.stdout + result.stderr

    listed = cli("threads", "ls", "--json", "--store", url)
    assert listed.returncode == 0, listed.stderr
    rows = {row["thread_id"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows[healthy.id]["status"] == "waiting_approval" and rows[healthy.id]["error"] is None
    assert rows[broken.id]["status"] == "unreadable" and "Unterminated string" in rows[broken.id]["error"]
    table = cli("threads", "ls", "--store", url)
    assert table.returncode == 0 and "unreadable" in table.stdout


def test_render_prints_exactly_what_the_model_gets(url: str, tmp_path: Path) -> None:
    thread = launch(url, text="a long ticket " * 40 + "[/bold] [link=https://evil.example]click[/link]")
    rendered = cli("threads", "render", thread.id, "--agents", "cli_support:agent", "--store", url)
    assert rendered.returncode == 0, rendered.stderr
    messages = agent().render(get(url, thread.id))
    assert rendered.stdout == "".join(f"[{m.role}]\n{m.content}\n" for m in messages)
    as_json = cli("threads", "render", thread.id, "--json", "--agents", "cli_support:agent", "--store", url)
    assert json.loads(as_json.stdout) == [m.to_dict() for m in messages]


def test_cancel_and_send_event(url: str) -> None:
    thread = launch(url)
    sent = cli("threads", "send-event", thread.id, "ticket_note", '{"text": "customer called"}', "--store", url)
    assert sent.returncode == 0, sent.stderr
    assert data_of(get(url, thread.id), "ticket_note") == {"text": "customer called"}
    cancelled = cli("threads", "cancel", thread.id, "--reason", "duplicate ticket", "--store", url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"thread {thread.id} is failed" in cancelled.stdout
    final: Thread = get(url, thread.id)
    assert final.status == "failed" and final.events[-1].data == {"reason": "duplicate ticket"}


def _worker(url: str, *options: str) -> subprocess.Popen[str]:
    command = [THREADLOOM, "worker", "--store", url, "--agents", "cli_support:agent", "--poll-seconds", "0.1"]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    worker = subprocess.Popen(
        [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment
    )
    wait_started(worker, "worker on")  # its banner: from now on SIGTERM stops it cleanly
    return worker


def _stop(worker: subprocess.Popen[str]) -> str:
    worker.send_signal(signal.SIGTERM)
    _, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors
    return errors


def test_the_worker_logs_json_lines_and_finishes_an_approved_thread(url: str) -> None:
    thread = launch(url)
    assert cli("threads", "approve", thread.id, "--store", url).returncode == 0
    worker = _worker(url, "--log-format", "json", "-v")
    try:
        _wait_until(url, thread.id, lambda t: t.status == "done")
    finally:
        lines = [json.loads(line) for line in _stop(worker).splitlines()]
    assert {"at", "level", "logger", "message"} <= set(lines[0])
    [started] = [line for line in lines if line["message"].startswith("worker started")]
    assert (started["logger"], started["level"], started["agents"]) == ("threadloom.cli", "info", "support")
    assert lines[-1]["message"].startswith("worker stopped")


def test_a_quiet_worker_logs_no_info_and_only_the_worker_creates_a_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    assert cli("threads", "ls", "--store", url).returncode == 1 and not (tmp_path / "new.db").exists()
    worker = _worker(url, "-q")
    assert _stop(worker) == ""
    assert (tmp_path / "new.db").exists()
    assert cli("threads", "ls", "--store", url).returncode == 0


def _wait_until(url: str, thread_id: str, done: Callable[[Thread], bool], timeout: float = 120) -> Thread:
    """Wait for the stored thread to satisfy `done` (the timeout only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while not done(thread := get(url, thread_id)):
        assert time.monotonic() < deadline, thread.to_json()
        time.sleep(0.05)
    return thread


def test_reject_respond_fork_and_the_listing_options(url: str) -> None:
    rejected, asked = launch(url), launch(url, '{"intent": "request_human_input", "question": "Card or credit?"}')
    out = cli("threads", "reject", rejected.id, "--feedback", "use store credit", "--store", url)
    assert out.returncode == 0 and f"thread {rejected.id} is ready" in out.stdout, out.stderr
    out = cli("threads", "respond", asked.id, "yes, go ahead", "--key", "answer-1", "--store", url)
    assert out.returncode == 0 and f"thread {asked.id} is ready" in out.stdout, out.stderr
    forked = cli("threads", "fork", rejected.id, "--at", rejected.events[0].id, "--store", url).stdout.strip()
    assert get(url, forked).metadata["forked_from"] == rejected.id

    def listed(*options: str) -> list[str]:
        done = cli("threads", "ls", "--json", *options, "--store", url)
        assert done.returncode == 0, done.stderr
        return [json.loads(line)["thread_id"] for line in done.stdout.splitlines()]

    assert listed() == [forked, asked.id, rejected.id]
    assert listed("--limit", "1") == [forked] and listed("--all") == listed()
    assert listed("--status", "ready", "--agent", "support") == [forked, asked.id, rejected.id]
    assert listed("--agent", "nobody") == []
    shown = cli("threads", "show", rejected.id, "--verbose", "--show-secrets", "--store", url)
    assert shown.returncode == 0 and '"feedback": "use store credit"' in shown.stdout
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("threadloom 0.")
