"""The deploy bot's eval suite: what it should do next at each point of a deploy, replayed offline.

    threadloom eval run examples/deploy_bot_evals.py:suite \
        --baseline examples/evals/deploy_bot.baseline.json --html report.html

Every model answer comes from `examples/evals/deploy_bot.cassette.yaml`, so the suite needs no
model, no network and no key, and fails with a diff of the prompt when the bot's prompt or tools
change. Re-record it (all of it, or with `update` only what changed) from a model of your choice:

    THREADLOOM_CASSETTES=update DEPLOY_BOT_EVAL_MODEL=local python examples/deploy_bot_evals.py

`DEPLOY_BOT_EVAL_MODEL` is what `examples/deploy_bot.py --model` takes (`local`, `scripted`,
`openai:NAME`, `anthropic:NAME`). The committed cassette was recorded from `local`: SmolLM2-135M,
the embedded offline model, in process. It always answers with a valid intent (a grammar holds it
to the schema) but rarely the right one: two of the seven cases pass. The baseline holds that, so
CI fails when a case gets worse, and a prompt change fails every case with a diff until the
cassette is re-recorded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import JsonValue

from threadloom import Event, Thread
from threadloom.evals import Case, NextIntent, OneOf, Outcome, Regex, Suite, load_baseline, load_cases
from threadloom.models import Model, ScriptedModel
from threadloom.models.cassette import MODE_ENV, Cassette

sys.path.insert(0, str(Path(__file__).parent.parent))  # `examples.deploy_bot`, when run as a script
from examples.deploy_bot import build_agent, list_git_tags, make_model

HERE = Path(__file__).parent / "evals"
CASSETTE = HERE / "deploy_bot.cassette.yaml"
CASES = HERE / "deploy_bot.cases.yaml"
BASELINE = HERE / "deploy_bot.baseline.json"


def slack(text: str) -> Thread:
    """A Slack message with the tags prefetched, as the loop leaves it before the model's first call."""
    thread = Thread.start("slack_message", {"from": "@alex", "channel": "#deployments", "text": text})
    call = Event("tool_call", {"intent": "list_git_tags", "arguments": {}, "policy": "auto", "prefetch": True})
    started: dict[str, JsonValue] = {"call_id": call.id, "intent": "list_git_tags", "idempotency_key": call.id}
    result: dict[str, JsonValue] = {
        "call_id": call.id,
        "intent": "list_git_tags",
        "result": list_git_tags.function(),  # what the bot's prefetch records: the tags, the newest named
    }
    return thread.extend([call, Event("tool_started", started), Event("tool_response", result)])


def asked_to_deploy(text: str) -> Thread:
    """`slack(text)` after the model chose to deploy v1.2.3 to production: the thread waits for approval."""
    deploy = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'
    return build_agent(ScriptedModel([deploy])).run_sync(slack(text))


def deployed() -> Thread:
    """The deploy approved and run: the model should say it is done."""
    waiting = asked_to_deploy("deploy the backend to production")
    assert waiting.pending is not None
    # The empty script stops the run at the model call after the deploy: the thread is cut there.
    ran = build_agent(ScriptedModel([])).run_sync(waiting.approve(waiting.pending.id))
    result = next(e for e in ran.events if e.type == "tool_response" and _intent(e) == "deploy_backend")
    return ran.fork(at=result.id, thread_id=ran.id)


def _intent(event: Event) -> object:
    return event.data.get("intent") if isinstance(event.data, dict) else None


def rejected() -> Thread:
    """The deploy rejected with feedback: the model must not deploy to production again."""
    waiting = asked_to_deploy("deploy the backend to production")
    assert waiting.pending is not None
    return waiting.reject(waiting.pending.id, "not on a Friday: use staging first")


def cases() -> list[Case]:
    """The suite's cases: the ones written here, then the case file's."""
    newest = NextIntent("deploy_backend", tag="v1.2.3", environment="production")
    return [
        Case("production: the newest tag", slack("deploy the backend to production"), [newest]),
        Case(
            "staging: the newest tag",
            slack("please ship the backend to staging"),
            [NextIntent("deploy_backend", tag="v1.2.3", environment="staging")],
        ),
        Case("after the deploy: says it is done", deployed(), [NextIntent("done_for_now", message=Regex(r"v1\.2\.3"))]),
        Case(
            "after a rejection: no second production deploy",
            rejected(),
            [NextIntent(OneOf("done_for_now", "request_more_information", "request_human_input"))],
        ),
        Case(
            "a request runs to the approval",
            Thread.start("slack_message", {"from": "@sam", "channel": "#deployments", "text": "deploy prod"}),
            [Outcome(status="waiting_approval", tools=["deploy_backend"])],
        ),
        *load_cases(CASES),
    ]


def suite() -> Suite:
    """The suite `threadloom eval run` loads: the bot on the replayed cassette (or recording into it)."""
    mode = os.environ.get(MODE_ENV, "replay")
    model: Model | None = None if mode == "replay" else make_model(os.environ.get("DEPLOY_BOT_EVAL_MODEL", "local"))
    return Suite([build_agent(Cassette(CASSETTE, model, mode="auto"))], cases(), title="deploy bot evals")


LIVE_CASES = ("production: the newest tag",)
"""The cases `live_suite` runs: one model call, so that CI can afford it on every run."""


def live_suite() -> Suite:
    """The suite's first case asked of a live model, no cassette: `DEPLOY_BOT_EVAL_MODEL` (default `local`).

    CI runs it on the embedded model (SmolLM2 in process: no network, no key) to show that the suite
    runs end to end on a real model today, not only on what the cassette remembers:

        threadloom eval run examples/deploy_bot_evals.py:live_suite --json live.json --html live.html
    """
    model = make_model(os.environ.get("DEPLOY_BOT_EVAL_MODEL", "local"))
    live = [case for case in cases() if case.name in LIVE_CASES]
    return Suite([build_agent(model)], live, title="deploy bot evals, live")


if __name__ == "__main__":
    report = suite().run_sync(progress=True)
    report.print()
    regressions = report.regressions(load_baseline(BASELINE)) if BASELINE.exists() else []
    print("\n".join(f"regressed: {r}" for r in regressions) or "no regressions")
    sys.exit(1 if regressions else 0)
