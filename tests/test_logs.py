"""Structured logs: one record per appended event, with the thread id, position, type and intent."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from threadloom import Agent, Event, Thread, tool
from threadloom.logs import log_steps
from threadloom.models import ScriptedModel

DONE = '{"intent": "done_for_now", "message": "down"}'


@tool
def check_health(environment: str) -> str:
    """Check an environment's health."""
    raise ConnectionError("no route to the moon")


def test_each_event_is_one_record_and_errors_are_warnings(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def mine(thread: Thread, event: Event) -> None:
        seen.append(event.type)

    answers = ['{"intent": "check_health", "environment": "moon"}', DONE]
    agent = Agent(name="ops", model=ScriptedModel(answers), tools=[check_health], after_step=mine)
    log_steps(agent)
    with caplog.at_level(logging.INFO, logger="threadloom"):
        thread = agent.run_sync(Thread.start("user_input", {"text": "is the moon up?"}))
    records = [r for r in caplog.records if r.name == "threadloom"]
    assert [(r.levelname, r.__dict__["event_type"], r.__dict__["step"]) for r in records] == [
        ("INFO", "tool_call", 2),
        ("INFO", "tool_started", 3),
        ("WARNING", "error", 4),
        ("INFO", "done_for_now", 5),
    ]
    assert records[2].getMessage() == (
        f"thread {thread.id} event 4: error check_health: ConnectionError: no route to the moon"
    )
    assert {r.__dict__["thread_id"] for r in records} == {thread.id} and records[0].__dict__["intent"] == "check_health"
    assert seen == ["tool_call", "tool_started", "error", "done_for_now"]  # the agent's own hook still runs


@tool
def login(user: str, api_key: SecretStr) -> str:
    """Log in."""
    raise PermissionError(f"key {api_key.get_secret_value()} was rejected for {user}")


def test_a_tool_error_quoting_its_secret_argument_is_logged_without_it(caplog: pytest.LogCaptureFixture) -> None:
    answers = ['{"intent": "login", "user": "ada", "api_key": "sk-live-abcdef123456"}', DONE]
    agent = log_steps(Agent(name="ops", model=ScriptedModel(answers), tools=[login]))
    with caplog.at_level(logging.INFO, logger="threadloom"):
        thread = agent.run_sync(Thread.start("user_input", {"text": "go"}))
    # Before: the error's message held the exception's text as raised, the key in it.
    errors = [r.getMessage() for r in caplog.records if r.name == "threadloom" and r.levelname == "WARNING"]
    assert errors == [f"thread {thread.id} event 4: error login: PermissionError: key [REDACTED] was rejected for ada"]
