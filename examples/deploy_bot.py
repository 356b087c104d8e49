"""The 12-factor deploy bot: a Slack message in, a deploy that waits for a person's approval.

    slack_message "deploy the backend to production"
      -> list_git_tags (prefetched by code, factor 13)
      -> the model picks the next step, e.g. deploy_backend(tag, environment)
         (policy "approval": the loop stops before the deploy runs)
      -> a person approves or rejects (console, --approve / --reject "feedback", or the CLI)
      -> the deploy runs once -> the model says done_for_now

By default a real model decides, offline, on this machine: SmolLM2-135M-Instruct run in process by
llama.cpp (`threadloom.models.local.LocalModel`), its answers constrained to the bot's intents by a
grammar, sampled at a low temperature with a new seed each run (`--seed N` repeats one). It is tiny:
it always picks a valid intent, not always a good one. The code around it makes it reliable without
deciding for it: the prefetch names the newest tag (`newest: v1.2.3`, factor 13), and `offer` narrows
each step to what makes sense next (deploy or ask; once a deploy ran, finish or ask: factor 8).
bench/bench_demo.py measures how often a run reaches `done` with the newest tag (bench/RESULTS.md).
The demo still bounds the run: it approves without a terminal, answers one question from the model
with a canned reply, and stops after a few stops for a person. `--model scripted` is the deterministic stand-in the tests
use; `--model openai:NAME` or `--model anthropic:NAME` asks a hosted model (its API key must be set).

The thread lives in a SQLite file (`--store`, default ./threadloom.db), so it survives this process:
run with `--wait` and approve from another terminal with `threadloom threads approve THREAD_ID`.
With `--serve` (`make demo DEMO_ARGS=--serve`) it serves the HTTP API and the web inbox once the
thread waits, and prints the inbox's address and an API key made for the run: approve there.
Run it with `make demo`, or `python examples/deploy_bot.py --reject "use staging first"`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import random
import secrets
import sys
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import JsonValue

from threadloom import Agent, Event, Runtime, Thread, UserError, tool
from threadloom.agent import AfterStep
from threadloom.context import Message
from threadloom.models import Completion, Model, ModelRequest, ScriptedModel

TAGS = [
    {"name": "v1.2.3", "commit": "abc123", "date": "2024-03-15T10:00:00Z"},
    {"name": "v1.2.2", "commit": "def456", "date": "2024-03-14T15:30:00Z"},
    {"name": "v1.2.1", "commit": "ghi789", "date": "2024-03-13T09:15:00Z"},
]
INSTRUCTIONS = "You are a deploy bot. Deploy what people ask for in Slack, using the newest tag."
CANNED_REPLY = "Deploy the newest tag to production."
"""What the demo answers, once, when the model asks a person something."""
MAX_STOPS = 3
"""Stops for an approval the demo handles before it ends the run, whatever the model does."""
MAX_STEPS = 3
"""Model steps between two human inputs (`Agent(max_steps=)`) for a real model: keeps the demo short."""
TEMPERATURE = 0.2
"""The local model samples at the temperature its model card recommends, with a new seed each run."""


@tool
def list_git_tags() -> dict[str, JsonValue]:
    """List the backend's most recent git tags, newest first, and name the newest one."""
    # Code, not the model, finds the newest tag (factor 13): a tiny model copies a tag it is handed
    # far more reliably than it compares dates.
    return {"newest": TAGS[0]["name"], "tags": [t["name"] for t in TAGS]}


def offer(thread: Thread) -> list[str]:
    """What the model may choose at this step (factor 8): the code narrows, the model still decides.

    Until a deploy has run: deploy, or ask what was meant. Once one has run: say it is done, or ask.
    After a rejected deploy: deploy again (elsewhere, say), finish, or ask.
    """
    deployed = rejected = False
    for event in thread.events:
        data: Any = event.data
        if event.type == "tool_response" and data.get("intent") == "deploy_backend":
            deployed = True
        elif event.type == "approval" and not data.get("approved"):
            rejected = True
    if deployed:
        return ["done_for_now", "request_more_information"]
    if rejected:
        return ["deploy_backend", "done_for_now", "request_more_information"]
    return ["deploy_backend", "request_more_information"]


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


def build_agent(model: Model | None = None, *, max_steps: int = 20, after_step: AfterStep | None = None) -> Agent:
    """The deploy bot; without a model, the scripted one (what `threadloom worker --agents ...` runs)."""
    return Agent(
        name="deploy_bot",
        model=model or ScriptedModel([decide] * 1000),
        tools=[deploy_backend],
        prefetch=[list_git_tags],
        instructions=INSTRUCTIONS,
        max_steps=max_steps,
        after_step=after_step,
        offer=offer,
    )


class Build(Protocol):
    """What makes the demo's agent: `build_agent`'s signature."""

    def __call__(self, model: Model, *, max_steps: int, after_step: AfterStep | None) -> Agent: ...


class Recorded:
    """Wraps a model: shows the messages of its first call and keeps every completion for the totals."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.completions: list[Completion] = []

    @property
    def name(self) -> str:
        return self.inner.name

    async def complete(self, request: ModelRequest) -> Completion:
        if not self.completions:
            section("What the model saw: the exact messages of its first call (factor 3)")
            for sent in request.messages:
                print(f"[{sent.role}]\n{sent.content}\n")
            section(f"The model decides ({self.name})")
        completion = await self.inner.complete(request)
        self.completions.append(completion)
        return completion


def make_model(spec: str, seed: int = 0) -> Model:
    """`local`, `scripted`, `openai:NAME` or `anthropic:NAME` as a model (`seed`: the local model's).

    Raises:
        UserError: An unknown spec, or one this installation cannot build (the message says why).
    """
    if spec == "scripted":
        return ScriptedModel([decide] * 1000)
    if spec == "local":
        try:
            from threadloom.models.local import LocalModel
        except ImportError as exc:
            raise UserError(f"--model local: {exc}") from exc
        return LocalModel(temperature=TEMPERATURE, seed=seed)
    if spec.startswith(("openai:", "anthropic:")):
        # Built by `threadloom.models.infer_model`, looked up at run time: older builds lack it.
        infer: Any = getattr(importlib.import_module("threadloom.models"), "infer_model", None)
        if infer is None:
            raise UserError(f"--model {spec}: this threadloom has no `threadloom.models.infer_model`")
        try:
            return infer(spec)
        except UserError:
            raise
        except Exception as exc:  # whatever the SDK raises when it cannot start: no extra, no API key, ...
            raise UserError(f"--model {spec}: {type(exc).__name__}: {exc}") from exc
    raise UserError(f"--model {spec!r}: use local, scripted, openai:NAME or anthropic:NAME")


def show_decisions(model: Recorded) -> AfterStep:
    """An `after_step` hook that prints each step the model (or the loop) takes, as it happens."""

    def show(thread: Thread, event: Event) -> None:
        data: Any = event.data
        if event.type == "tool_call" and not data.get("prefetch"):
            print(f"  model -> {data['intent']} {json.dumps(data['arguments'])}{_stats(model)}")
        elif event.type in ("done_for_now", "request_more_information", "request_human_input"):
            who = "loop " if "reason" in data else "model"  # the loop escalates at its limits
            shown = json.dumps(_without_usage(data))  # the tokens and time follow, in brackets
            print(f"  {who} -> {event.type} {shown}{'' if who == 'loop ' else _stats(model)}")
        elif event.type == "error" and data.get("source") == "model":
            print(f"  model -> no valid intent ({data.get('error_type')}): {str(data.get('output', ''))[:120]!r}")
        elif event.type == "tool_response" and not _prefetched(thread, data["call_id"]):
            print(f"  tool  <- {data['intent']}: {json.dumps(data['result'])[:120]}")

    return show


def _prefetched(thread: Thread, call_id: str) -> bool:
    return any(e.id == call_id and isinstance(e.data, dict) and e.data.get("prefetch") for e in thread.events)


def _stats(model: Recorded) -> str:
    last = model.completions[-1] if model.completions else None
    if last is None or (last.usage.input_tokens == 0 and last.latency_ms == 0):
        return ""
    return f"   [{last.usage.input_tokens} tokens in, {last.usage.output_tokens} out, {last.latency_ms / 1000:.1f}s]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="local", help="local (default), scripted, openai:NAME or anthropic:NAME")
    parser.add_argument("--store", default="sqlite:///threadloom.db", help="where the thread lives")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--approve", action="store_true", help="approve the deploy without asking")
    choice.add_argument("--reject", metavar="FEEDBACK", help="reject the deploy with this feedback for the model")
    choice.add_argument("--wait", action="store_true", help="wait for a decision from another terminal (the CLI)")
    choice.add_argument("--serve", action="store_true", help="once it waits, serve the API and the inbox to decide")
    parser.add_argument("--port", type=int, default=8000, help="with --serve: the port (0: any free one)")
    parser.add_argument("--seed", type=int, help="the local model's sampling seed (default: a new one each run)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    try:
        model = make_model(args.model, seed)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.model == "local":
        print(f"SmolLM2-135M samples at temperature {TEMPERATURE} with seed {seed} (--seed {seed} repeats this run)")
    if args.serve:
        return asyncio.run(serve_demo(model, args.store, args.port))
    thread = asyncio.run(demo(model, args.store, args.approve, args.reject, args.wait))
    # The scripted run is a check (CI): it must finish. A real model may do anything valid.
    return 0 if thread.status == "done" or not isinstance(model, ScriptedModel) else 1


async def demo(
    inner: Model, store: str, approve: bool, reject: str | None, wait: bool, *, build: Build | None = None
) -> Thread:
    """The demo's run, printed as it goes: launch, answer the stops for a person, show the thread.

    `build` makes the agent (`build_agent` by default; bench/bench_demo.py passes others to compare).
    """
    scripted = isinstance(inner, ScriptedModel)
    model = Recorded(inner)
    agent = (build or build_agent)(model, max_steps=20 if scripted else MAX_STEPS, after_step=show_decisions(model))
    runtime = Runtime(store=store, agents=[agent])
    thread_id = await _launch(runtime)
    stops, replied = 0, False
    while True:
        thread = await runtime.get(thread_id)
        pending = thread.pending
        if pending is None or stops >= MAX_STOPS:
            break
        if thread.status == "waiting_approval":
            stops += 1
            await _approval(runtime, thread, store, approve, reject, wait, first=stops == 1)
        elif thread.status == "waiting_human" and not replied:
            replied = True
            asker = "loop" if isinstance(pending.data, dict) and "reason" in pending.data else "model"
            section(f"The {asker} asks a person")
            print(f"{pending.type}: {pending.data}\ncanned reply: {CANNED_REPLY!r}")
            await runtime.respond(thread_id, pending.id, CANNED_REPLY)
        else:
            break
        await runtime.run_until_idle()
    thread = await runtime.get(thread_id)
    await runtime.aclose()
    if thread.pending is not None:
        print(f"\nThe demo stops here (it handles {MAX_STOPS} approvals and answers one question); the thread")
        print(f"stays {thread.status!r} in {store}: decide with `threadloom threads` and run a worker to go on.")

    section(f"Final thread (status {thread.status!r})")
    for event in thread.events:
        print(f"{event.type:>16}  {_without_usage(event.data)}")
    print_usage(thread)
    return thread


async def _launch(runtime: Runtime) -> str:
    """Launch the deploy bot from its Slack message and run it until it stops (for a person, or done)."""
    message: dict[str, JsonValue] = {
        "from": "@alex",
        "channel": "#deployments",
        "text": "deploy the backend to production",
    }
    thread_id = await runtime.launch("deploy_bot", Event("slack_message", message))
    await runtime.run_until_idle()
    return thread_id


async def serve_demo(inner: Model, store: str, port: int) -> int:
    """`--serve`: run the bot until it waits, then serve the API, the inbox and a worker until Ctrl-C.

    The API key printed is made for this run (beside any in THREADLOOM_API_KEYS); decide in the
    inbox and the worker in this process runs the deploy, printing each step as the plain demo does.
    """
    from threadloom.server import listen, serve, server_config  # the `server` extra

    scripted = isinstance(inner, ScriptedModel)
    model = Recorded(inner)
    agent = build_agent(model, max_steps=20 if scripted else MAX_STEPS, after_step=show_decisions(model))
    runtime = Runtime(store=store, agents=[agent])
    thread = await runtime.get(await _launch(runtime))
    section(f"The thread waits: {thread.waiting_reason or thread.status}")
    sock = listen("127.0.0.1", port)
    host, bound = sock.getsockname()[:2]
    url = f"http://{host}:{bound}"
    key = "tlk_" + secrets.token_urlsafe(24)
    keys = ",".join(filter(None, [os.environ.get("THREADLOOM_API_KEYS"), f"demo:{key}:read+write+approve"]))
    config = await server_config(runtime, environ={**os.environ, "THREADLOOM_API_KEYS": keys}, public_url=url)

    def ready() -> None:
        print(f"inbox:   {url}/inbox")
        print(f"API key: {key}  (made for this demo: sign in to the inbox with it)")
        print(f"API:     curl -H 'Authorization: Bearer {key}' '{url}/v1/threads?status={thread.status}'")
        print(f"thread:  {thread.id}\nServing until Ctrl-C.", flush=True)

    await serve(config, sock, on_ready=ready)
    return 0


async def _approval(
    runtime: Runtime, thread: Thread, store: str, approve: bool, reject: str | None, wait: bool, *, first: bool
) -> None:
    pending = thread.pending
    assert pending is not None
    section(f"Stopped before running: {thread.waiting_reason} (status {thread.status!r})")
    print(f"call {pending.id}: {_without_usage(pending.data)}")
    if first:
        print(f"\nThe thread is saved in {store}. From another terminal:")
        print(f"  threadloom threads approve {thread.id} --store {store}")
        print(f"  threadloom threads reject {thread.id} --feedback 'use staging first' --store {store}")
    if wait:
        print("\nwaiting for a decision from another terminal...")
        # The decision arrives in the store from another process: poll it (no event can cross processes).
        while (await runtime.get(thread.id)).status == "waiting_approval":  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        return
    approved, feedback = decide_here(approve, reject)
    if approved:
        await runtime.approve(thread.id, pending.id)
    else:
        await runtime.reject(thread.id, pending.id, feedback)


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


def print_usage(thread: Thread) -> None:
    """What this run cost, from the thread itself: each model call is recorded with its event (factor 5)."""
    section("Usage, from the thread's events (thread.usage)")
    for name, usage in thread.usage_by_model.items():
        print(f"{name}: {usage.requests} model calls, {usage.input_tokens} tokens in, {usage.output_tokens} tokens out")


def section(title: str) -> None:
    print(f"\n=== {title} ===\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
