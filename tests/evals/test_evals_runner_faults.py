"""What one case's trouble must not do to the run: abort it, lose its cassette, or leak its secrets."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import JsonValue, SecretStr

from threadloom import Agent, Event, ModelError, RateLimited, Thread, tool
from threadloom.evals import Case, Judge, NextIntent, Outcome, Regex, evaluate
from threadloom.models import Completion, ModelRequest, ScriptedModel
from threadloom.models.cassette import Cassette

DONE = '{"intent": "done_for_now", "message": "hi"}'


def greeter(model: object = None) -> Agent:
    return Agent(name="greeter", model=model or ScriptedModel([DONE] * 10))  # pyright: ignore[reportArgumentType]


def hello() -> Thread:
    return Thread.start("user_input", {"text": "hi"})


class Down:
    """A judge's model that is rate limited on every call."""

    name = "down"

    async def complete(self, request: ModelRequest) -> Completion:
        raise RateLimited("down: HTTP 429", status_code=429)


async def test_a_failing_judge_or_a_bad_regex_fails_its_check_and_the_run_goes_on(tmp_path: Path) -> None:
    judge = Judge("Greets.", model=Down())
    # Built in code: a case file's bad pattern is refused when loaded (test_evals_cases), this one is judged.
    bad = Case("bad regex", hello(), [NextIntent("done_for_now", message=Regex("["))])
    cases = [
        Case("judged", hello(), [judge]),
        bad,
        Case("fine", hello(), [NextIntent("done_for_now", message=Regex("^h"))]),
    ]
    path = tmp_path / "cassette.yaml"
    report = await evaluate(greeter(Cassette(path, ScriptedModel([DONE] * 10), mode="record")), cases)
    [judged], [regex], [fine] = (c.attempts for c in report.cases)
    assert not judged.passed and judged.results[0].detail == "the judge's model failed: RateLimited: down: HTTP 429"
    assert not regex.passed and regex.results[0].detail.startswith(
        "message: the pattern '[' is not a regular expression"
    )
    assert fine.passed and path.exists()  # the other case was judged, the cassette saved


async def test_an_instrumented_agent_saves_the_cassette_it_recorded_into(tmp_path: Path) -> None:
    from threadloom.otel import instrument

    path = tmp_path / "cassette.yaml"
    agent = instrument(greeter(Cassette(path, ScriptedModel([DONE]), mode="record")))
    report = await evaluate(agent, [Case("greets", hello(), [NextIntent("done_for_now")])])
    assert report.pass_rate == 1.0 and path.exists()
    replayed = await evaluate(
        greeter(Cassette(path, mode="replay")), [Case("greets", hello(), [NextIntent("done_for_now")])]
    )
    assert replayed.pass_rate == 1.0


@tool
def login(user: str, pin: SecretStr) -> str:
    """Log a user in."""
    return "logged in"


async def test_reports_show_secret_tool_arguments_redacted() -> None:
    answers = ['{"intent": "login", "user": "ada", "pin": "4711-0815", "api_token": "x"}', DONE] * 2
    agent = Agent(name="door", model=ScriptedModel(answers), tools=[login])
    cases = [
        Case("step", hello(), [NextIntent("login", user="ada", pin="0000-0000")]),
        Case("run", hello(), [Outcome(status="done", tools=["login"])]),
    ]
    report = await evaluate(agent, cases, concurrency=1)
    for shown in (report.to_json(), report.to_html()):
        assert "4711-0815" not in shown and "[REDACTED]" in shown
    step = report.cases[0].attempts[0]
    assert json.loads(step.answer) == {"intent": "login", "user": "ada", "pin": "[REDACTED]"}
    assert not step.passed and step.results[0].detail == 'pin: expected "0000-0000", got "[REDACTED]"'


def _fails_quoting(error: type[Exception], *secrets: str) -> Callable[[object], str]:
    """A model output that raises, its message quoting the thread's secrets (a custom model, a provider's echo)."""

    def answer(messages: object) -> str:
        raise error(f"upstream refused the request: {' / '.join(secrets)}")

    return answer


@pytest.mark.parametrize("error", [RuntimeError, ModelError])
async def test_an_attempts_error_is_redacted_as_the_rest_of_the_report(error: type[Exception]) -> None:
    call: dict[str, JsonValue] = {"intent": "login", "arguments": {"user": "ada", "pin": "4711-0815"}, "policy": "auto"}
    thread = Thread.start("user_input", {"text": "hi", "password": "hunter22-rotated"}).append(Event("tool_call", call))
    thread = thread.append(Event("tool_response", {"call_id": thread.events[-1].id, "intent": "login", "result": "ok"}))
    model = ScriptedModel([_fails_quoting(error, "4711-0815", "hunter22-rotated")] * 2)
    agent = Agent(name="door", model=model, tools=[login])
    cases = [Case("step", thread, [NextIntent("done_for_now")]), Case("run", thread, [Outcome(status="done")])]
    report = await evaluate(agent, cases, concurrency=1, retries=0)
    # Before: the error kept the exception's text, with the thread's secrets it quoted, in every report.
    for attempt in (c.attempts[0] for c in report.cases):
        assert attempt.error == f"{error.__name__}: upstream refused the request: [REDACTED] / [REDACTED]"
    for shown in (report.to_json(), report.to_html()):
        assert "4711-0815" not in shown and "hunter22" not in shown
