"""`threadloom threads show`: dates with times, usage and cost, secrets redacted, model records on request, the
command that answers what the thread waits for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import JsonValue
from typer.testing import CliRunner

from cli_support import store_thread
from threadloom import Event
from threadloom.cli import app

USAGE: dict[str, JsonValue] = {
    "name": "gpt-4.1-mini",
    "input_tokens": 1_000_000,
    "output_tokens": 500_000,
    "cached_tokens": 400_000,
}
TICKET = Event("support_ticket", {"text": "refund please", "api_key": "sk-live-123"})
CALL = Event(
    "tool_call",
    {
        "intent": "refund",
        "arguments": {"order_id": "A-1001", "amount_cents": 4599, "password": "hunter2"},
        "policy": "approval",
        "model": USAGE,
    },
)


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/threads.db"
    monkeypatch.setenv("THREADLOOM_STORE", url)
    monkeypatch.setenv("COLUMNS", "80")
    return url


def show(*args: str) -> str:
    result = CliRunner().invoke(app, ["threads", "show", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_show_gives_dates_with_times_usage_cost_and_the_commands_that_answer(url: str) -> None:
    thread = store_thread(url, [TICKET, CALL])
    out = show(thread.id)
    assert re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC (\w+) ", out, re.MULTILINE) == [
        "support_ticket",
        "tool_call",
    ]
    assert "usage: gpt-4.1-mini: 1 call, 1,000,000 tokens in (400,000 cached), 500,000 out; $1.0800" in out
    assert "cost: $1.0800" in out
    lines = out.splitlines()
    assert lines[-6:] == [
        f"waiting for approval to run `refund` ({CALL.id})",
        '  arguments: {"order_id": "A-1001", "amount_cents": 4599, "password": "[REDACTED]"}',
        f"  approve: threadloom threads approve {thread.id} {CALL.id}",
        f"  edit:    threadloom threads approve {thread.id} {CALL.id} --edit order_id=...",
        f"  reject:  threadloom threads reject {thread.id} {CALL.id} --feedback why",
        f"thread {thread.id} is waiting_approval: approval to run `refund`",
    ]


def test_model_records_are_hidden_unless_verbose(url: str) -> None:
    thread = store_thread(url, [TICKET, CALL])
    assert '"model"' not in show(thread.id) and "input_tokens" not in show(thread.id)
    assert '"model": {"name": "gpt-4.1-mini", "input_tokens": 1000000' in show(thread.id, "--verbose")
    [event] = [e for e in json.loads(show(thread.id, "--json"))["events"] if e["type"] == "tool_call"]
    assert "model" not in event["data"]


def test_secrets_are_redacted_unless_asked_for(url: str) -> None:
    thread = store_thread(url, [TICKET, CALL])
    for out in (show(thread.id), show(thread.id, "--json"), show(thread.id, "--verbose")):
        assert "sk-live-123" not in out and "hunter2" not in out and "[REDACTED]" in out
    shown = show(thread.id, "--show-secrets")
    assert "sk-live-123" in shown and "hunter2" in shown
    assert "sk-live-123" in show(thread.id, "--json", "--show-secrets")


def test_show_json_is_one_object(url: str) -> None:
    thread = store_thread(url, [TICKET, CALL])
    [line] = show(thread.id, "--json").splitlines()
    shown = json.loads(line)
    assert {k: shown[k] for k in ("thread_id", "agent", "status", "waiting_for", "pending")} == {
        "thread_id": thread.id,
        "agent": "support",
        "status": "waiting_approval",
        "waiting_for": "approval to run `refund`",
        "pending": CALL.id,
    }
    assert shown["usage"] == {
        "gpt-4.1-mini": {"input_tokens": 1_000_000, "output_tokens": 500_000, "cached_tokens": 400_000, "requests": 1}
    }
    assert shown["cost"] == {
        "total": pytest.approx(1.08),
        "by_model": {"gpt-4.1-mini": pytest.approx(1.08)},
        "unpriced": [],
    }
    assert [e["at"] for e in shown["events"]] == [e.at.isoformat() for e in thread.events]


def test_a_question_ends_with_the_command_that_answers_it(url: str, tmp_path: Path) -> None:
    question = Event("request_human_input", {"question": "Refund to card or credit?", "choices": ["card", "credit"]})
    thread = store_thread(url, [TICKET, question])
    other = f"sqlite:///{tmp_path}/other.db"
    store_thread(other, [TICKET, question], thread_id=thread.id)
    assert show(thread.id).splitlines()[-4:] == [
        f"waiting for Refund to card or credit? ({question.id})",
        "  choices: card, credit",
        f"  respond: threadloom threads respond {thread.id} 'your answer'",
        f"thread {thread.id} is waiting_human: Refund to card or credit?",
    ]
    assert f"respond: threadloom threads respond {thread.id} 'your answer' --store {other}" in show(
        thread.id, "--store", other
    )
