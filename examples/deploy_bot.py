"""The 12-factor deploy bot, offline: a Slack message in, a deploy that waits for a person's approval.

    slack_message "deploy the backend to production"
      -> list_git_tags (prefetched by code, factor 13)
      -> the model picks deploy_backend(tag, environment)   (policy "approval": the loop stops)
      -> a person approves or rejects (console, --approve / --reject "feedback", or the CLI)
      -> the deploy runs once -> the model says done_for_now

The thread lives in a SQLite file (`--store`, default ./threadloom.db), so it survives this process:
run with `--wait` and approve from another terminal with `threadloom threads approve THREAD_ID`.
Run it with `make demo`, or `python examples/deploy_bot.py --reject "use staging first"`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Literal

from pydantic import JsonValue

from threadloom import Agent, Event, Runtime, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel

TAGS = [
    {"name": "v1.2.3", "commit": "abc123", "date": "2024-03-15T10:00:00Z"},
    {"name": "v1.2.2", "commit": "def456", "date": "2024-03-14T15:30:00Z"},
    {"name": "v1.2.1", "commit": "ghi789", "date": "2024-03-13T09:15:00Z"},
]


@tool
def list_git_tags() -> list[dict[str, str]]:
    """List the backend's most recent git tags, newest first."""
    return TAGS


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> dict[str, str]:
    """Deploy a tagged backend build to an environment.

    Args:
        tag: the git tag to deploy, e.g. v1.2.3
        environment: where to deploy it
    """
    return {"status": "success", "tag": tag, "environment": environment}


def decide(messages: Sequence[Message]) -> str:
    """The scripted model: it reads the context, as an LLM would, so any process can run the next step."""
    context = messages[-1].content
    if "<deploy_backend_result>" in context:
        return '{"intent": "done_for_now", "message": "Deployed v1.2.3 to production."}'
    if "approved: false" in context:
        return '{"intent": "done_for_now", "message": "I did not deploy: the deploy was rejected."}'
    # The model's raw text, as an LLM would write it: tolerant parsing handles the fence.
    return '```json\n{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}\n```'


def build_agent() -> Agent:
    """The deploy bot. A scripted model stands in for the LLM, so the demo runs offline."""
    return Agent(
        name="deploy_bot",
        model=ScriptedModel([decide] * 1000),
        tools=[deploy_backend],
        prefetch=[list_git_tags],
        instructions="You are a deploy bot. Deploy what people ask for in Slack, using the newest tag.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="sqlite:///threadloom.db", help="where the thread lives")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--approve", action="store_true", help="approve the deploy without asking")
    choice.add_argument("--reject", metavar="FEEDBACK", help="reject the deploy with this feedback for the model")
    choice.add_argument("--wait", action="store_true", help="wait for a decision from another terminal (the CLI)")
    args = parser.parse_args(argv)
    return asyncio.run(demo(args.store, args.approve, args.reject, args.wait))


async def demo(store: str, approve: bool, reject: str | None, wait: bool) -> int:
    agent = build_agent()
    runtime = Runtime(store=store, agents=[agent])
    message: dict[str, JsonValue] = {
        "from": "@alex",
        "channel": "#deployments",
        "text": "deploy the backend to production",
    }
    thread_id = await runtime.launch("deploy_bot", Event("slack_message", message))
    await runtime.run_until_idle()
    thread = await runtime.get(thread_id)

    model = agent.model
    assert isinstance(model, ScriptedModel)
    section("What the model saw: the exact messages of its first call (factor 3)")
    for sent in model.requests[0].messages:
        print(f"[{sent.role}]\n{sent.content}\n")

    pending = thread.pending
    if thread.status != "waiting_approval" or pending is None:
        print(f"expected the thread to wait for approval, but it is {thread.status!r}", file=sys.stderr)
        return 1
    section(f"Stopped before running: {thread.waiting_reason} (status {thread.status!r})")
    print(f"call {pending.id}: {_without_usage(pending.data)}")
    print(f"\nThe thread is saved in {store}. From another terminal:")
    print(f"  threadloom threads approve {thread_id} --store {store}")
    print(f"  threadloom threads reject {thread_id} --feedback 'use staging first' --store {store}")

    if wait:
        print("\nwaiting for a decision from another terminal...")
        # The decision arrives in the store from another process: poll it (no event can cross processes).
        while (await runtime.get(thread_id)).status == "waiting_approval":  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    else:
        approved, feedback = decide_here(approve, reject)
        if approved:
            await runtime.approve(thread_id, pending.id)
        else:
            await runtime.reject(thread_id, pending.id, feedback)
    await runtime.run_until_idle()
    thread = await runtime.get(thread_id)
    await runtime.aclose()

    section(f"Final thread (status {thread.status!r})")
    for event in thread.events:
        print(f"{event.type:>16}  {_without_usage(event.data)}")
    return 0 if thread.status == "done" else 1


def _without_usage(data: JsonValue) -> JsonValue:
    """An event's data without the record of the model call that produced it (tokens, latency)."""
    return {k: v for k, v in data.items() if k != "model"} if isinstance(data, dict) else data


def decide_here(approve: bool, reject: str | None) -> tuple[bool, str]:
    """Approve or reject: from the flags, else from the console, else (no terminal) approve."""
    if approve or reject is not None:
        return reject is None, reject or ""
    if not sys.stdin.isatty():
        print("stdin is not a terminal, so approving (pass --reject 'feedback' to see a rejection)")
        return True, ""
    answer = input("Approve this deploy? [y = yes / anything else = reject with that feedback] ").strip()
    return answer.lower() in ("y", "yes"), answer or "rejected at the console, no reason given"


def section(title: str) -> None:
    print(f"\n=== {title} ===\n")


if __name__ == "__main__":
    sys.exit(main())
