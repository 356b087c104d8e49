"""The embedded model (SmolLM2-135M, `LocalModel`): speed, and how often a step is a valid intent.

Each prompt is one model step of a small agent; a step is valid when `parse` turns the answer into
one of the agent's intents. The same steps run with the grammar (`"json_schema"`) and without it
(`"prompted"`: only the prompt asks for JSON). The deploy bot runs end to end as in the demo.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import llama_cpp

sys.path.insert(0, str(Path(__file__).parent.parent))  # the examples

from examples.deploy_bot import build_agent

from threadloom import Agent, ParseError, Thread, parse, tool
from threadloom.models import Completion, ModelRequest
from threadloom.models.local import LocalModel

MAX_TOKENS = 128
N_CTX = 2048


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Current weather for a city."""
    return f"18 degrees in {city}"


@tool
def create_ticket(title: str, priority: Literal["low", "normal", "urgent"], body: str) -> str:
    """Open a support ticket."""
    return "TCK-1"


@tool
def schedule_meeting(attendees: list[str], day: str, minutes: int) -> str:
    """Put a meeting in the calendar."""
    return "booked"


@tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool(policy="approval")
def refund(order_id: str, amount: float, reason: str) -> str:
    """Refund (part of) an order."""
    return "refunded"


AGENTS: dict[str, tuple[str, list[Any]]] = {
    "weather": ("You answer questions about the weather.", [get_weather]),
    "support": ("You are a support agent: open tickets and refund orders.", [create_ticket, refund]),
    "calendar": ("You schedule meetings.", [schedule_meeting]),
    "math": ("You do arithmetic with the tools.", [add]),
}

PROMPTS: list[tuple[str, str]] = [
    ("weather", "What's the weather in Paris?"),
    ("weather", "is it cold in Oslo right now, in fahrenheit please"),
    ("weather", "Do I need an umbrella in London today?"),
    ("weather", "thanks, that's all"),
    ("weather", "Tell me a joke."),
    ("support", "My order 1234 arrived broken, I want my money back: 25 euros."),
    ("support", "The app crashes when I log in. Please fix it ASAP!!"),
    ("support", "how do I reset my password?"),
    ("support", "Refund order A-77 in full, 99.90, customer changed their mind"),
    ("support", "Can you open a low-priority ticket: typo on the pricing page"),
    ("calendar", "Set up a 30 minute sync with Ana and Bo on Tuesday."),
    ("calendar", "book an hour with the design team friday"),
    ("calendar", "Cancel everything I have tomorrow."),
    ("calendar", "who is in the meeting on Monday?"),
    ("calendar", "Schedule a meeting."),
    ("math", "What is 2 + 3?"),
    ("math", "add 1.5 and 2.25"),
    ("math", "what's seventeen plus twenty-five"),
    ("math", "Is 7 a prime number?"),
    ("math", "hello"),
]


@dataclass
class Tally:
    """Steps, valid steps and timing for one way of asking."""

    steps: int = 0
    valid: int = 0
    output_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    prompt_ms: float = 0.0
    answer_ms: float = 0.0
    errors: list[str] = field(default_factory=list[str])

    def add(self, completion: Completion, valid: bool, prompt_ms: float, evaluated: int) -> None:
        self.steps += 1
        self.valid += valid
        self.output_tokens += completion.usage.output_tokens
        self.prompt_tokens_evaluated += evaluated
        self.prompt_ms += prompt_ms
        self.answer_ms += max(completion.latency_ms - prompt_ms, 0.0)


class Measured:
    """A `LocalModel` whose calls are timed with llama.cpp's own counters and checked with `parse`."""

    def __init__(self, model: LocalModel, tally: Tally, intent_type: Any) -> None:
        self.model = model
        self.tally = tally
        self.intent_type = intent_type

    @property
    def name(self) -> str:
        return self.model.name

    async def complete(self, request: ModelRequest) -> Completion:
        llama = self.model._load()  # pyright: ignore[reportPrivateUsage]  # the bench reads llama.cpp's timers
        llama_cpp.llama_perf_context_reset(llama.ctx)
        completion = await self.model.complete(request)
        perf = llama_cpp.llama_perf_context(llama.ctx)
        try:
            parse(completion.text, self.intent_type)
            valid = True
        except ParseError:
            valid = False
        self.tally.add(completion, valid, perf.t_p_eval_ms, perf.n_p_eval)
        return completion


async def prompts(model: LocalModel) -> Tally:
    tally = Tally()
    for kind, text in PROMPTS:
        instructions, tools = AGENTS[kind]
        agent = Agent(name=kind, model=model, tools=tools, instructions=instructions)
        agent.model = Measured(model, tally, agent.intent_type)
        try:
            await agent.next_step(Thread.start("user_input", {"text": text}))
        except ParseError:
            pass  # counted as invalid by Measured
    return tally


async def deploy_bot(model: LocalModel) -> Tally:
    """The demo's run: approve every deploy, answer one question, at most 3 stops; count every step."""
    tally = Tally()
    agent = build_agent(max_steps=3)
    agent.model = Measured(model, tally, agent.intent_type)
    thread = await agent.run(Thread.start("slack_message", {"text": "deploy the backend to production"}))
    replied = False
    for _ in range(3):
        pending = thread.pending
        if pending is None:
            break
        if thread.status == "waiting_approval":
            thread = await agent.run(thread.approve(pending.id))
        elif thread.status == "waiting_human" and not replied:
            replied = True
            thread = await agent.run(thread.respond(pending.id, "Deploy the newest tag to production."))
        else:
            break
    return tally


def _row(workload: str, grammar: bool, tally: Tally) -> str:
    share = tally.valid / tally.steps if tally.steps else 0.0
    prompt_rate = tally.prompt_tokens_evaluated / (tally.prompt_ms / 1000) if tally.prompt_ms else 0.0
    answer_rate = tally.output_tokens / (tally.answer_ms / 1000) if tally.answer_ms else 0.0
    how = "grammar (`json_schema`)" if grammar else "no grammar (`prompted`)"
    return (
        f"| {workload} | {how} | {tally.steps} | {tally.valid} ({share:.0%}) | "
        f"{prompt_rate:,.0f} | {answer_rate:,.1f} | {tally.output_tokens / max(tally.steps, 1):.0f} |"
    )


def run() -> str:
    """A markdown section with the table."""
    rows = [
        "| workload | constraint | steps | valid intents | prompt tokens/s | answer tokens/s | answer tokens/step |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    started = time.monotonic()
    for grammar in (True, False):
        model = LocalModel(grammar=grammar, n_ctx=N_CTX, max_tokens=MAX_TOKENS)
        try:
            rows.append(_row("deploy bot (demo run)", grammar, asyncio.run(deploy_bot(model))))
            rows.append(_row(f"{len(PROMPTS)} varied prompts", grammar, asyncio.run(prompts(model))))
        finally:
            model.close()
    minutes = (time.monotonic() - started) / 60
    load = os.getloadavg()[1]  # the machine is shared: say how busy it was
    return "\n".join(
        [
            "## Local model (SmolLM2-135M-Instruct Q4_1, in process)",
            "",
            f"`LocalModel(n_ctx={N_CTX}, max_tokens={MAX_TOKENS})`, greedy, llama.cpp's default threads. A step is",
            "valid when `parse` turns the answer into one of the agent's intents; with the grammar every",
            "step must be. The deploy bot runs as `make demo` does (every deploy approved, one question",
            "answered, `max_steps=3`); the varied prompts are one step each of four small agents",
            "(weather, support with an approval tool, calendar, arithmetic), including prompts no tool",
            "fits. Prompt tokens/s counts the tokens llama.cpp evaluated (a prefix shared with the",
            "previous call is reused, not re-read); answer tokens/s is the rest of each call's wall time,",
            f"sampling and the grammar included. The whole run took {minutes:.1f} minutes, with a load",
            f"average of {load:.1f} on {os.cpu_count()} cores from other jobs: compare the rows, not the machine.",
            "",
            *rows,
        ]
    )


if __name__ == "__main__":
    print(run())
