"""Agents the server tests drive over HTTP (scripted models that read their context, as an LLM would)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx

from threadloom import Agent, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel

DEPLOY = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'
ASK = (
    '{"intent": "request_human_input", "question": "Which environment?", "format": "multiple_choice",'
    ' "choices": ["staging", "production"]}'
)
FREE = '{"intent": "request_human_input", "question": "Anything to add?"}'
YES_NO = '{"intent": "request_human_input", "question": "Deploy now?", "format": "yes_no"}'
deployed: list[str] = []
"""Every deploy that ran, in this process (the server runs in a thread of it)."""


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> dict[str, str]:
    """Deploy a tag to an environment."""
    deployed.append(f"{tag}@{environment}")
    return {"status": "success", "tag": tag, "environment": environment}


def _deciding(messages: Sequence[Message]) -> str:
    context = messages[-1].content
    if "<deploy_backend_result>" in context:
        return '{"intent": "done_for_now", "message": "deployed"}'
    if "approved: false" in context:
        return '{"intent": "done_for_now", "message": "not deployed"}'
    return DEPLOY


def deploy_bot() -> Agent:
    """Launch -> a deploy waiting for approval -> (approved) the deploy runs -> done."""
    return Agent(name="deploy_bot", model=ScriptedModel([_deciding] * 10_000), tools=[deploy_backend])


def asker(question: str = ASK, *, name: str = "asker") -> Agent:
    """Launch -> a question (by default multiple-choice: staging / production) -> (answered, or a Slack reply) done."""

    def asking(messages: Sequence[Message]) -> str:
        if any(tag in messages[-1].content for tag in ("<human_response", "<slack_message")):
            return '{"intent": "done_for_now", "message": "thanks"}'
        return question

    return Agent(name=name, model=ScriptedModel([asking] * 10_000))


class Gate:
    """A tool that runs until the test opens the gate: a slow tool whose timing the test decides."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.opened = threading.Event()

    def agent(self) -> Agent:
        gate = self

        @tool
        def slow_check(name: str) -> str:
            """Check something slowly."""
            gate.started.set()
            gate.opened.wait(30)
            return f"checked {name}"

        def deciding(messages: Sequence[Message]) -> str:
            if "<slow_check_result>" in messages[-1].content:
                return '{"intent": "done_for_now", "message": "checked"}'
            return '{"intent": "slow_check", "name": "db"}'

        return Agent(name="slow", model=ScriptedModel([deciding] * 10_000), tools=[slow_check])


def launch(client: httpx.Client, agent: str = "deploy_bot", text: str = "deploy", **extra: Any) -> str:
    """Launch a thread over the API; its id."""
    answer = client.post("/v1/threads", json={"agent": agent, "event": {"type": "user_input", "data": text}, **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()["thread_id"]


def wait_for(client: httpx.Client, thread_id: str, *statuses: str) -> dict[str, Any]:
    """The thread over the API once its status is one of `statuses` (the server's worker runs it)."""
    deadline = time.monotonic() + 30
    while True:
        thread = client.get(f"/v1/threads/{thread_id}").json()
        if thread["status"] in statuses:
            return thread
        if time.monotonic() > deadline:
            raise AssertionError(f"thread {thread_id} is still {thread['status']}, not {statuses}")
        time.sleep(0.02)
