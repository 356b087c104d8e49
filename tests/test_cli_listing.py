"""`threadloom threads ls`: newest first, how many more there are, what each waits for, ids never cut."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_support import cli, store_thread
from threadloom import Event
from threadloom.cli import app

LONG_ID = "th_" + "0123456789abcdef" * 4  # 67 characters: longer than the table leaves at 80 columns


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/threads.db"
    monkeypatch.setenv("THREADLOOM_STORE", url)
    monkeypatch.setenv("COLUMNS", "80")
    return url


def ls(*args: str) -> str:
    result = CliRunner().invoke(app, ["threads", "ls", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def ticket(n: int) -> Event:
    return Event("support_ticket", {"text": f"ticket {n}"})


def test_the_newest_come_first_and_the_listing_says_how_many_more_there_are(url: str) -> None:
    ids = [store_thread(url, [ticket(n)], thread_id=f"th_{n:03}").id for n in range(55)]
    assert re.findall(r"th_\d{3}", ls()) == ids[::-1][:50]
    assert "50 of 55 threads; --limit N or --all for more" in ls()
    assert [json.loads(line)["thread_id"] for line in ls("--json", "--limit", "3").splitlines()] == ids[:-4:-1]
    assert ls("--all").count("th_") == 55 and " of 55" not in ls("--all")
    assert " of " not in ls("--limit", "55")
    result = CliRunner().invoke(app, ["threads", "ls", "--json", "--limit", "2"])
    assert result.stderr == "2 of 55 threads; --limit N or --all for more\n"  # stdout stays JSON lines


def test_each_thread_says_what_it_waits_for(url: str) -> None:
    call = Event("tool_call", {"intent": "refund", "arguments": {"order_id": "A-1"}, "policy": "approval"})
    asked = "Which order? " + "the one from May " * 6
    question = Event("request_human_input", {"question": asked})
    sleep = Event("wait_until", {"until": "2031-05-06T07:08:09+00:00", "reason": "cool-off"})
    approval = store_thread(url, [ticket(1), call]).id
    human = store_thread(url, [ticket(2), question]).id
    sleeping = store_thread(url, [ticket(3), sleep]).id
    ready = store_thread(url, [ticket(4)]).id
    rows = {row["thread_id"]: row for row in map(json.loads, ls("--json").splitlines())}
    assert rows[approval]["waiting_for"] == "approval to run `refund`"
    assert rows[human]["waiting_for"] == asked
    assert rows[sleeping]["waiting_for"] == "2031-05-06 07:08:09 UTC"
    assert rows[ready]["waiting_for"] is None
    assert {r["status"] for r in rows.values()} == {"waiting_approval", "waiting_human", "sleeping", "ready"}
    assert [r["thread_id"] for r in map(json.loads, ls("--json", "--status", "sleeping").splitlines())] == [sleeping]
    table = " ".join(ls().split())
    assert "approval to run `refund`" in table and "Which order?" in table


def test_ids_are_whole_at_80_columns_however_long_the_rest(url: str) -> None:
    question = Event("request_human_input", {"question": "a question that needs many words to ask " * 4})
    long_agent = store_thread(url, [ticket(1), question], agent="an_agent_with_a_rather_long_name").id
    short = store_thread(url, [ticket(2)]).id
    out = ls()
    assert max(map(len, out.splitlines())) <= 80  # a table that fits
    assert long_agent in out.split() and short in out.split()
    assert "…" not in out and "an_agent" in out  # the long cells fold, nothing is cut off

    store_thread(url, [ticket(3), question], thread_id=LONG_ID)
    out = ls()
    assert {LONG_ID, long_agent, short} <= set(out.splitlines())  # too long for a table: each id on its line
    assert "  waiting_human" in out and "a question that needs" in out


def test_statuses_are_coloured_on_a_terminal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/threads.db"
    thread = store_thread(url, [ticket(1)])
    listed = cli("threads", "ls", "--store", url, env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert listed.returncode == 0, listed.stderr
    assert "\x1b[36mready" in listed.stdout  # cyan
    assert thread.id in listed.stdout
