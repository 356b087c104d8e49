"""The deploy bot's prompts, pinned where they are reviewed (factor 2: prompts are code): the exact text its
model gets at three points of a deploy, snapshotted inline, and its next intent at each, asserted.

A change to the bot's instructions, tools, offers or prefetch, or to threadloom's default prompt or
renderer, changes a snapshot below: the diff shows in review before it reaches a model.
`pytest --inline-snapshot=fix tests/test_deploy_bot_prompts.py` rewrites them once the change is meant.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from inline_snapshot import snapshot

from threadloom import Agent, Thread
from threadloom.evals import OneOf, Regex, assert_next_intent, assert_next_intent_sync
from threadloom.models import ScriptedModel
from threadloom.models.cassette import render_request, request_record

ROOT = Path(__file__).parent.parent
if str(ROOT) not in sys.path:  # `examples.*` importable however pytest runs (make test's script adds no cwd)
    sys.path.insert(0, str(ROOT))

from examples.deploy_bot import build_agent  # noqa: E402
from examples.deploy_bot_evals import CASSETTE, deployed, rejected, slack  # noqa: E402


def prompt(agent: Agent, thread: Thread) -> str:
    """What the model gets for this thread, as a cassette's diff shows it: the messages, then the intents offered."""
    record = request_record(agent.model.name, agent.request(thread))
    return render_request({k: record[k] for k in ("model", "messages", "intent_names")})


def test_a_fresh_request_prompts_with_the_prefetched_tags_and_offers_deploy_or_ask() -> None:
    agent = build_agent()
    thread = slack("deploy the backend to production")
    assert prompt(agent, thread) == snapshot("""\
model: scripted
[system]
You are a deploy bot. Deploy what people ask for in Slack, using the newest tag.

You decide the next step. Always answer with exactly one JSON object and nothing else; its "intent" field names the step. Finishing and asking a person are intents too.

The intents:
- deploy_backend: Deploy a tagged backend build to an environment. (a person approves it before it runs)
  {"intent": "deploy_backend", "tag": string /* the git tag to deploy, e.g. v1.2.3 */, "environment": "staging" | "production" /* where to deploy it */}
- request_more_information: Ask the human who asked for clarification before going on.
  {"intent": "request_more_information", "message": string /* the question to ask */}
[user]
<slack_message>
from: "@alex"
channel: "#deployments"
text: deploy the backend to production
</slack_message>

<list_git_tags_result>
newest: v1.2.3
tags:
  - v1.2.3
  - v1.2.2
  - v1.2.1
</list_git_tags_result>

What is the next step? Answer with one JSON object.
intents: deploy_backend, request_more_information\
""")
    assert_next_intent_sync(agent, thread, "deploy_backend", tag="v1.2.3", environment="production")


def test_after_a_rejection_the_prompt_shows_the_feedback_and_offers_finishing_too() -> None:
    agent = build_agent()
    thread = rejected()
    assert prompt(agent, thread) == snapshot("""\
model: scripted
[system]
You are a deploy bot. Deploy what people ask for in Slack, using the newest tag.

You decide the next step. Always answer with exactly one JSON object and nothing else; its "intent" field names the step. Finishing and asking a person are intents too.

The intents:
- deploy_backend: Deploy a tagged backend build to an environment. (a person approves it before it runs)
  {"intent": "deploy_backend", "tag": string /* the git tag to deploy, e.g. v1.2.3 */, "environment": "staging" | "production" /* where to deploy it */}
- done_for_now: Finish: the work is done, or there is nothing more to do until someone writes again.
  {"intent": "done_for_now", "message": string /* what to tell the human: the outcome, in a sentence or two */}
- request_more_information: Ask the human who asked for clarification before going on.
  {"intent": "request_more_information", "message": string /* the question to ask */}
[user]
<slack_message>
from: "@alex"
channel: "#deployments"
text: deploy the backend to production
</slack_message>

<list_git_tags_result>
newest: v1.2.3
tags:
  - v1.2.3
  - v1.2.2
  - v1.2.1
</list_git_tags_result>

<deploy_backend>
tag: v1.2.3
environment: production
</deploy_backend>

<approval>
approved: false
feedback: "not on a Friday: use staging first"
</approval>

What is the next step? Answer with one JSON object.
intents: deploy_backend, done_for_now, request_more_information\
""")
    assert_next_intent_sync(agent, thread, OneOf("done_for_now", "request_more_information"), message=Regex("reject"))


async def test_after_the_deploy_the_prompt_shows_its_result_and_offers_only_finish_or_ask() -> None:
    agent = build_agent()
    thread = await asyncio.to_thread(deployed)  # it runs the bot to there, with an event loop of its own
    assert prompt(agent, thread) == snapshot("""\
model: scripted
[system]
You are a deploy bot. Deploy what people ask for in Slack, using the newest tag.

You decide the next step. Always answer with exactly one JSON object and nothing else; its "intent" field names the step. Finishing and asking a person are intents too.

The intents:
- done_for_now: Finish: the work is done, or there is nothing more to do until someone writes again.
  {"intent": "done_for_now", "message": string /* what to tell the human: the outcome, in a sentence or two */}
- request_more_information: Ask the human who asked for clarification before going on.
  {"intent": "request_more_information", "message": string /* the question to ask */}
[user]
<slack_message>
from: "@alex"
channel: "#deployments"
text: deploy the backend to production
</slack_message>

<list_git_tags_result>
newest: v1.2.3
tags:
  - v1.2.3
  - v1.2.2
  - v1.2.1
</list_git_tags_result>

<deploy_backend>
tag: v1.2.3
environment: production
</deploy_backend>

<approval>approved: true</approval>

<deploy_backend_result>
status: success
tag: v1.2.3
environment: production
</deploy_backend_result>

What is the next step? Answer with one JSON object.
intents: done_for_now, request_more_information\
""")
    await assert_next_intent(agent, thread, "done_for_now", message=Regex(r"v1\.2\.3"))


def test_the_cassette_the_evals_replay_was_recorded_from_this_prompt() -> None:
    # The committed cassette holds SmolLM2's answers to these very messages (the embedded model's
    # json_schema strategy gets the same prompt as the scripted one): were it stale, every eval would
    # fail with a diff; this says it where the prompt is pinned.
    recorded = CASSETTE.read_text()
    for line in prompt(build_agent(), slack("deploy the backend to production")).splitlines()[1:]:
        if line and not line.startswith(("[", "intents:")):
            assert line in recorded, line


def test_a_wrong_next_intent_fails_with_the_answer_and_the_context_it_saw() -> None:
    staging = '{"intent": "deploy_backend", "tag": "v1.2.2", "environment": "staging"}'
    agent = build_agent(ScriptedModel([staging]))
    with pytest.raises(AssertionError) as failed:
        assert_next_intent_sync(
            agent, slack("deploy the backend to production"), "deploy_backend", tag="v1.2.3", environment="production"
        )
    message = str(failed.value)
    assert '"tag": "v1.2.2"' in message and "newest: v1.2.3" in message  # the answer, and what the model saw
