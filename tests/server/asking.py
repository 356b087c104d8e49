"""Agents that stop for a person (an approval, a question), and a second runtime on the server's store.

The tests launch and read threads through `Side`, a runtime on the same store as the server's, as
another process would: what the server appended (and what it did not) is read from the store.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Literal, TypeVar

from serving import SECRET

from threadloom import Agent, Event, Runtime, Thread, tool
from threadloom.messages import Message
from threadloom.models import ScriptedModel
from threadloom.server._links import answer_url

T = TypeVar("T")

deployed: list[str] = []
"""Every tag the `deploy` tool deployed, in order (the effect that must run once)."""


@tool(policy="approval")
def deploy(tag: str, environment: Literal["staging", "production"] = "staging", replicas: int = 2) -> dict[str, str]:
    """Deploy a tagged build.

    Args:
        tag: the git tag to deploy, e.g. v1.2.3
        environment: where to deploy it
        replicas: how many copies to run
    """
    deployed.append(f"{tag}@{environment}x{replicas}")
    return {"deployed": tag, "environment": environment}


def _deploy_step(messages: Sequence[Message]) -> str:
    context = messages[-1].content
    if "<deploy_result>" in context:
        return json.dumps({"intent": "done_for_now", "message": "Deployed."})
    if "approved: false" in context:
        return json.dumps({"intent": "done_for_now", "message": "Not deployed: it was rejected."})
    return json.dumps({"intent": "deploy", "tag": "v1.2.3", "environment": "production"})


def deploy_bot() -> Agent:
    """Asks to deploy v1.2.3 to production (an approval), then says it is done."""
    return Agent(name="deploy_bot", model=ScriptedModel([_deploy_step] * 100), tools=[deploy])


def _ask_step(messages: Sequence[Message]) -> str:
    context = messages[-1].content
    if "<human_response>" in context:
        answer = context.rsplit("<human_response>", 1)[1].split("</human_response>", 1)[0]
        return json.dumps({"intent": "done_for_now", "message": f"Going with {answer}."})
    urgency = re.search(r"urgency: (low|medium|high)", context)
    return json.dumps(
        {
            "intent": "request_human_input",
            "question": "Which environment should get v1.2.3?",
            "context": "staging has v1.2.2; production has v1.2.1",
            "urgency": urgency.group(1) if urgency else "medium",
            "format": "multiple_choice",
            "choices": ["staging", "production"],
        }
    )


def asker() -> Agent:
    """Asks a person which environment (multiple choice; the urgency its first event names), then is done."""
    return Agent(name="asker", model=ScriptedModel([_ask_step] * 100))


class Side:
    """A runtime on the server's store, as another process: launch threads, read them, wait for a status.

    Its calls run on a thread of their own, so they work beside a running event loop too (playwright's).
    """

    def __init__(self, store_url: str, agents: Sequence[Agent] = ()) -> None:
        self._runtime = Runtime(store=store_url, agents=agents)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="side")

    def call(self, work: Callable[[Runtime], T]) -> T:
        """`work(runtime)`, with the runtime's `*_sync` methods, on the side's own thread."""
        return self._thread.submit(work, self._runtime).result()

    def launch(self, agent: str, **data: str) -> str:
        """A new thread of `agent`, started by a `user_input` with `data`."""
        return self.call(lambda runtime: runtime.launch_sync(agent, Event("user_input", dict(data))))

    def get(self, thread_id: str) -> Thread:
        """The thread as stored now."""
        return self.call(lambda runtime: runtime.get_sync(thread_id))

    def wait(self, thread_id: str, until: Callable[[Thread], bool], *, seconds: float = 30) -> Thread:
        """The thread once `until` holds (the server's worker runs it); fails after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            thread = self.get(thread_id)
            if until(thread):
                return thread
            assert time.monotonic() < deadline, f"thread {thread_id} stuck at {thread.status}: {thread.events[-1]}"
            time.sleep(0.05)

    def waiting(self, thread_id: str) -> Thread:
        """The thread once it waits for a person."""
        return self.wait(thread_id, lambda t: t.status in ("waiting_approval", "waiting_human"))

    def link(self, thread: Thread, base_url: str = "", ttl: timedelta = timedelta(days=7)) -> str:
        """The answer link of the thread's pending request, as a path (or a URL on `base_url`)."""
        url = answer_url(base_url or "http://x", SECRET, thread, ttl)
        assert url is not None, "nothing waits for a person"
        return url if base_url else url.removeprefix("http://x")

    def close(self) -> None:
        """Close its store and its thread."""
        self.call(lambda runtime: runtime.close())
        self._thread.shutdown()


def types(thread: Thread) -> list[str]:
    """The thread's event types, in order."""
    return [event.type for event in thread.events]
