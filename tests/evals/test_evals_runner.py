"""The eval runner and its checks: next intents and fields, predicates, outcomes, judges, repeats, retries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pytest

from threadloom import Agent, Event, Message, RateLimited, Thread, UserError, tool
from threadloom.evals import (
    Case,
    Judge,
    NextIntent,
    OneOf,
    Outcome,
    Predicate,
    Range,
    Regex,
    Sample,
    Suite,
    evaluate,
    evaluate_sync,
)
from threadloom.models import Completion, ModelRequest, ScriptedModel, Usage
from threadloom.models.cassette import Cassette

DEPLOY = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production", "replicas": 3}'


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"], replicas: int = 1) -> str:
    """Deploy a tagged backend version to an environment."""
    return f"deployed {tag} to {environment}"


@tool
def check_health(environment: str) -> str:
    """Check an environment's health."""
    return "healthy"


def decide(messages: Sequence[Message]) -> str:
    text = messages[-1].content
    if "<check_health_result>" in text:
        return '{"intent": "done_for_now", "message": "staging is healthy"}'
    if "health" in text:
        return '{"intent": "check_health", "environment": "staging"}'
    if "staging" in text:
        return '{"intent": "deploy_backend", "tag": "v1.2.2", "environment": "staging"}'
    return DEPLOY


def agent(model: object = None, name: str = "scripted") -> Agent:
    chosen = model or ScriptedModel([decide] * 100, name=name)
    return Agent(name="deployer", model=chosen, tools=[deploy_backend, check_health])  # pyright: ignore[reportArgumentType]


def slack(text: str) -> Thread:
    return Thread.start("slack_message", {"text": text})


async def test_next_intent_checks_exact_values_one_of_regex_and_range() -> None:
    cases = [
        Case(
            "production",
            slack("deploy to production"),
            [NextIntent("deploy_backend", tag=Regex(r"^v1\.2\.\d$"), environment="production", replicas=Range(1, 5))],
        ),
        Case("staging", slack("deploy to staging"), [NextIntent("deploy_backend", environment="production")]),
        Case("either", slack("deploy to staging"), [NextIntent(OneOf("deploy_backend", "done_for_now"))]),
    ]
    report = await evaluate(agent(), cases)
    rates = {c.case: c.pass_rate for c in report.cases}
    assert rates == {"production": 1.0, "staging": 0.0, "either": 1.0}
    [failed] = report.cases[1].attempts
    assert failed.results[0].detail == 'environment: expected "production", got "staging"'
    assert json.loads(failed.answer)["tag"] == "v1.2.2"
    assert failed.messages[-1]["content"].count("deploy to staging") == 1  # the rendered context, for the report


def test_matchers_refuse_what_they_should() -> None:
    assert not Range(1, 5).matches(True) and not Range(max=5).matches("3") and Range(min=1).matches(10**9)
    assert not Regex("a").matches(3) and OneOf(1, 2).matches(2) and not OneOf(1, 2).matches(3)


async def test_a_missing_field_and_a_wrong_intent_say_what_was_got() -> None:
    cases = [
        Case("missing", slack("deploy to staging"), [NextIntent("deploy_backend", replicas=2)]),
        Case("wrong", slack("deploy to staging"), [NextIntent("done_for_now")]),
    ]
    report = await evaluate(agent(), cases)
    details = [c.attempts[0].results[0].detail for c in report.cases]
    assert details == ["replicas: expected 2, got 1", "intent: expected done_for_now, got deploy_backend"]


async def test_an_outcome_runs_the_agent_to_its_stop_and_checks_status_and_tools() -> None:
    cases = [
        Case("health", slack("check staging health"), [Outcome(status="done", tools=["check_health"])]),
        Case("deploy", slack("deploy to staging"), [Outcome(status="done")]),
    ]
    report = await evaluate(agent(), cases)
    assert [c.pass_rate for c in report.cases] == [1.0, 0.0]
    assert report.cases[1].attempts[0].results[0].detail == "status: expected done, got waiting_approval"
    assert report.cases[0].attempts[0].requests == 2  # both model calls of the run are counted


async def test_a_predicate_passes_fails_and_fails_on_its_own_error() -> None:
    def tagged(sample: Sample) -> bool:
        return sample.fields["tag"].startswith("v1")

    def broken(sample: Sample) -> bool:
        raise KeyError("nope")

    case = Case("p", slack("deploy"), [Predicate(tagged), Predicate(lambda s: False, "never"), Predicate(broken)])
    [attempt] = (await evaluate(agent(), [case])).cases[0].attempts
    assert [(r.check, r.passed, r.detail) for r in attempt.results] == [
        ("tagged", True, ""),
        ("never", False, "returned False"),
        ("broken", False, "KeyError: 'nope'"),
    ]


async def test_a_judge_gets_the_context_and_the_answer_and_its_verdict_counts() -> None:
    judge_model = ScriptedModel(['{"passed": false, "reason": "staging was asked for"}', "not json at all"])
    judge = Judge("Deploys where the user asked.", model=judge_model)
    case = Case("judged", slack("deploy to staging"), [judge])
    report = await evaluate(agent(), [case], repeats=2, concurrency=1)
    first, second = (a.results[0] for a in report.cases[0].attempts)
    assert (first.passed, first.detail) == (False, "staging was asked for")
    assert not second.passed and second.detail.startswith("the judge's answer is not a verdict")
    asked = judge_model.requests[0].messages
    assert "Criterion: Deploys where the user asked." in asked[0].content
    assert "deploy to staging" in asked[1].content and '"environment": "staging"' in asked[1].content


class Flaky:
    """Rate limited on the first `failures` calls, then the scripted answer."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def complete(self, request: ModelRequest) -> Completion:
        self.calls += 1
        if self.calls <= self.failures:
            raise RateLimited("flaky: HTTP 429", status_code=429)
        return Completion(DEPLOY, "flaky-1", usage=Usage(100, 20), latency_ms=5.0)


async def test_provider_errors_are_retried_then_reported() -> None:
    case = Case("retry", slack("deploy"), [NextIntent("deploy_backend")])
    recovered = await evaluate(agent(Flaky(2)), [case], retries=2, retry_delay=0)
    [attempt] = recovered.cases[0].attempts
    assert attempt.passed and attempt.retries == 2 and attempt.input_tokens == 100
    gave_up = await evaluate(agent(Flaky(5)), [case], retries=1, retry_delay=0)
    [attempt] = gave_up.cases[0].attempts
    assert not attempt.passed and attempt.error == "RateLimited: flaky: HTTP 429"


async def test_a_run_whose_model_call_failed_is_retried_too() -> None:
    case = Case("run", slack("deploy"), [Outcome(status="waiting_approval", tools=["deploy_backend"])])
    report = await evaluate(agent(Flaky(1)), [case], retries=1, retry_delay=0)
    assert report.cases[0].attempts[0].passed and report.cases[0].attempts[0].retries == 1


async def test_repeats_give_a_pass_rate_and_models_are_compared() -> None:
    answers = [DEPLOY, '{"intent": "done_for_now", "message": "no"}'] * 2
    coin = agent(ScriptedModel(answers, name="gpt-4.1-mini"))
    steady = agent(name="steady")
    case = Case("deploys", slack("deploy to production"), [NextIntent("deploy_backend")])
    report = await evaluate([coin, steady], [case], repeats=4, concurrency=1)
    assert [(c.model, c.pass_rate) for c in report.cases] == [("gpt-4.1-mini", 0.5), ("steady", 1.0)]
    assert [m.model for m in report.models] == ["gpt-4.1-mini", "steady"]
    assert report.models[0].attempts == 4 and report.pass_rate == 0.75


async def test_cost_comes_from_the_price_table() -> None:
    model = Flaky(0)
    case = Case("priced", slack("deploy"), [NextIntent("deploy_backend")])
    report = await evaluate(agent(model), [case], prices={"flaky-1": (1.0, 10.0)})
    assert report.cases[0].attempts[0].cost == pytest.approx((100 * 1.0 + 20 * 10.0) / 1e6)
    assert report.models[0].cost == report.cases[0].attempts[0].cost
    unpriced = await evaluate(agent(Flaky(0)), [case])
    assert unpriced.models[0].cost is None


async def test_a_cassette_mismatch_fails_the_case_with_the_diff(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    case = Case("c", slack("deploy to production"), [NextIntent("deploy_backend")])
    recorded = await evaluate(agent(Cassette(path, ScriptedModel([DEPLOY]), mode="record")), [case])
    assert recorded.pass_rate == 1.0 and path.exists()  # the runner saved the cassette it recorded into
    replayed = await evaluate(agent(Cassette(path, mode="replay")), [case])
    assert replayed.pass_rate == 1.0
    changed = Case("c", slack("deploy to production now"), [NextIntent("deploy_backend")])
    [attempt] = (await evaluate(agent(Cassette(path, mode="replay")), [changed])).cases[0].attempts
    assert attempt.error is not None and attempt.error.startswith("CassetteMismatch")
    assert "+<slack_message>text: deploy to production now</slack_message>" in attempt.error


def test_misuse_is_refused() -> None:
    case = Case("c", slack("x"), [NextIntent("done_for_now")])
    with pytest.raises(UserError, match="at least one agent and one case"):
        evaluate_sync(agent(), [])
    with pytest.raises(UserError, match="repeat"):
        evaluate_sync(agent(), [case, case])
    with pytest.raises(UserError, match="at least 1"):
        evaluate_sync(agent(), [case], repeats=0)


def test_a_suite_runs_with_a_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    suite = Suite([agent()], [Case("c", slack("deploy"), [NextIntent("deploy_backend")])], title="bar", repeats=3)
    assert suite.run_sync(progress=True).pass_rate == 1.0


async def test_a_case_in_the_middle_of_a_run_is_judged_on_its_next_step() -> None:
    thread = slack("check staging health")
    call = Event("tool_call", {"intent": "check_health", "arguments": {"environment": "staging"}, "policy": "auto"})
    thread = thread.append(call).append(
        Event("tool_response", {"call_id": call.id, "intent": "check_health", "result": "healthy"})
    )
    case = Case("after health", thread, [NextIntent("done_for_now", message=Regex("healthy"))])
    assert (await evaluate(agent(), [case])).pass_rate == 1.0
