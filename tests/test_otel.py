"""OpenTelemetry spans, checked with the SDK's in-memory exporter: names, attributes, parents, across processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from threadloom import Agent, Event, RateLimited, Runtime, Thread, UserError, tool
from threadloom.models import Completion, ModelRequest, Usage
from threadloom.otel import TracedModel, TracedStore, instrument, thread_span_context

ROOT = Path(__file__).parent.parent


@tool
def check_health(environment: str) -> str:
    """Check an environment's health."""
    if environment == "moon":
        raise ConnectionError("no route to the moon")
    return "healthy"


@tool(policy="approval")
def deploy_backend(tag: str) -> str:
    """Deploy a tag."""
    return f"deployed {tag}"


class Counting:
    """Answers in order, each with usage, as a provider would report it."""

    name = "gpt-4.1-mini"

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)

    async def complete(self, request: ModelRequest) -> Completion:
        if not self.answers:
            raise RateLimited("gpt-4.1-mini: HTTP 429", status_code=429)
        text = self.answers.pop(0)
        return Completion(text, "gpt-4.1-mini-2025-04-14", usage=Usage(100 + len(text), 7), stop_reason="stop")


def traced(answers: Sequence[str]) -> tuple[Agent, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = Agent(name="ops", model=Counting(answers), tools=[check_health, deploy_backend])
    return instrument(agent, tracer_provider=provider), exporter


HEALTH = '{"intent": "check_health", "environment": "staging"}'
DONE = '{"intent": "done_for_now", "message": "healthy"}'


def ids(span: ReadableSpan) -> SpanContext:
    assert span.context is not None
    return span.context


def by_name(spans: Sequence[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def test_a_run_has_a_span_with_model_and_tool_spans_under_it() -> None:
    agent, exporter = traced([HEALTH, DONE])
    thread = agent.run_sync(Thread.start("user_input", {"text": "is staging healthy?"}))
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == [
        "chat gpt-4.1-mini",
        "execute_tool check_health",
        "chat gpt-4.1-mini",
        "invoke_agent ops",
    ]
    run = by_name(spans)["invoke_agent ops"]
    assert all(s.parent is not None and s.parent.span_id == ids(run).span_id for s in spans if s is not run)
    chat = spans[0]
    assert chat.kind == SpanKind.CLIENT
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4.1-mini",
        "gen_ai.response.model": "gpt-4.1-mini-2025-04-14",
        "gen_ai.usage.input_tokens": 100 + len(HEALTH),
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.response.finish_reasons": ("stop",),
    }
    tool_span = by_name(spans)["execute_tool check_health"]
    assert tool_span.attributes is not None
    assert (
        tool_span.attributes["threadloom.tool.policy"] == "auto"
        and tool_span.attributes["threadloom.tool.outcome"] == "ok"
    )
    # The run's token attributes are the thread's own usage, and the sum of its model spans'.
    assert run.attributes is not None
    assert run.attributes["gen_ai.usage.input_tokens"] == thread.usage.input_tokens
    assert run.attributes["gen_ai.usage.output_tokens"] == thread.usage.output_tokens
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert sum(int((s.attributes or {})["gen_ai.usage.input_tokens"]) for s in chats) == thread.usage.input_tokens  # pyright: ignore[reportArgumentType]
    assert run.attributes["threadloom.thread.status"] == "done" and run.attributes["threadloom.thread.id"] == thread.id


def test_a_failing_tool_and_a_failing_model_call_say_so() -> None:
    agent, exporter = traced(['{"intent": "check_health", "environment": "moon"}'])
    agent.run_sync(Thread.start("user_input", {"text": "is the moon healthy?"}))
    spans = by_name(exporter.get_finished_spans())
    tool_span = spans["execute_tool check_health"]
    assert tool_span.status.status_code == StatusCode.ERROR and tool_span.attributes is not None
    assert tool_span.attributes["threadloom.tool.outcome"] == "error"
    assert tool_span.attributes["error.type"] == "ConnectionError"
    failed = [s for s in exporter.get_finished_spans() if s.name == "chat gpt-4.1-mini"][-1]
    assert failed.status.status_code == StatusCode.ERROR and (failed.attributes or {})["error.type"] == "RateLimited"


def test_a_run_inside_the_callers_span_is_its_child_and_links_the_threads_trace() -> None:
    agent, exporter = traced([DONE])
    provider: Any = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    thread = Thread.start("user_input", {"text": "hi"})
    with provider.get_tracer("test").start_as_current_span("http request") as outer:
        agent.run_sync(thread)
    run = by_name(exporter.get_finished_spans())["invoke_agent ops"]
    assert run.parent is not None and run.parent.span_id == outer.get_span_context().span_id
    assert [link.context.trace_id for link in run.links] == [thread_span_context(thread.id).trace_id]


WORKER = """
import asyncio, json, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from threadloom import Agent, Runtime
from threadloom.models import ScriptedModel
from threadloom.otel import TracedStore, instrument
sys.path.insert(0, "tests")
from test_otel import deploy_backend, check_health

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
model = ScriptedModel(['{"intent": "done_for_now", "message": "deployed"}'])
agent = instrument(Agent(name="ops", model=model, tools=[check_health, deploy_backend]), tracer_provider=provider)

async def main():
    runtime = Runtime(store=TracedStore(sys.argv[1], tracer_provider=provider), agents=[agent])
    await runtime.run_until_idle()
    await runtime.aclose()

asyncio.run(main())
print(json.dumps([
    {"name": s.name, "trace_id": s.context.trace_id, "span_id": s.context.span_id,
     "parent": s.parent.span_id if s.parent else None, "start": s.start_time, "end": s.end_time,
     "thread": s.attributes.get("threadloom.thread.id")}
    for s in exporter.get_finished_spans()
]))
"""


async def test_a_run_resumed_in_another_process_continues_the_threads_trace(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/t.db"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = Agent(name="ops", model=Counting(['{"intent": "deploy_backend", "tag": "v1.2.3"}']), tools=[deploy_backend])
    runtime = Runtime(
        store=TracedStore(store, tracer_provider=provider), agents=[instrument(agent, tracer_provider=provider)]
    )
    thread_id = await runtime.launch("ops", Event("user_input", {"text": "deploy v1.2.3"}))
    await runtime.run_until_idle()
    waiting = await runtime.get(thread_id)
    assert waiting.status == "waiting_approval" and waiting.pending is not None
    await runtime.approve(thread_id, waiting.pending.id)
    approval = (await runtime.get(thread_id)).events[len(waiting)]
    await runtime.aclose()
    command = [sys.executable, "-c", WORKER, store]
    done = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout)
    here = exporter.get_finished_spans()
    root = thread_span_context(thread_id)
    first = by_name(here)["invoke_agent ops"]
    second = next(s for s in there if s["name"] == "invoke_agent ops")
    assert ids(first).trace_id == second["trace_id"] == root.trace_id  # one trace for the thread
    assert first.parent is not None and first.parent.span_id == second["parent"] == root.span_id
    names = ["wait_for_human", "execute_tool deploy_backend", "chat scripted", "invoke_agent ops"]
    assert [s["name"] for s in there if not s["name"].startswith("store ")] == names
    # The wait runs from the recorded call to the approval, both times the thread's own.
    wait = next(s for s in there if s["name"] == "wait_for_human")
    call = waiting.pending
    assert wait["start"] == int(call.at.timestamp() * 1e9) and wait["end"] == int(approval.at.timestamp() * 1e9)
    assert all(s["trace_id"] == root.trace_id for s in there if not s["name"].startswith("store "))

    # The store's spans on the thread, in both processes: each run's saves under that run, the rest
    # (the launch, the loads before a run, the approval) straight under the thread's own context.
    def parents(spans: Sequence[tuple[str, int, int | None]]) -> list[tuple[str, str]]:
        runs = {ids(first).span_id: "first run", second["span_id"]: "second run", root.span_id: "thread"}
        return [(name, runs.get(parent or 0, "?")) for name, trace_id, parent in spans if trace_id == root.trace_id]

    stored_here = [
        (s.name, ids(s).trace_id, s.parent.span_id if s.parent else None)
        for s in here
        if s.name.startswith("store ") and (s.attributes or {}).get("threadloom.thread.id") == thread_id
    ]
    assert parents(stored_here)[0] == ("store append", "thread")  # the launch
    appends = [parent for name, parent in parents(stored_here) if name == "store append"]
    assert appends == ["thread", "first run", "thread"]  # the launch, the run's call, the approval
    assert {parent for name, parent in parents(stored_here) if name == "store load"} == {"thread"}
    assert len(parents(stored_here)) == len(stored_here)  # every one in the thread's trace
    stored_there = [
        (s["name"], s["trace_id"], s["parent"])
        for s in there
        if s["name"].startswith("store ") and s["thread"] == thread_id
    ]
    assert len(parents(stored_there)) == len(stored_there) and parents(stored_there) == [
        ("store load", "thread"),  # before the run
        ("store append", "second run"),  # tool_started
        ("store append", "second run"),  # its result
        ("store append", "second run"),  # done
    ]


@pytest.mark.parametrize("thread_id", ["th_1", "a" * 200, ""])
def test_the_threads_span_context_is_valid_and_the_same_everywhere(thread_id: str) -> None:
    context = thread_span_context(thread_id)
    assert context.is_valid and context.is_remote and context == thread_span_context(thread_id)


def test_instrumenting_an_agent_twice_leaves_it_instrumented_once() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = Agent(name="ops", model=Counting([HEALTH, DONE]), tools=[check_health])
    assert instrument(instrument(agent, tracer_provider=provider), tracer_provider=provider) is agent
    agent.run_sync(Thread.start("user_input", {"text": "is staging healthy?"}))
    # Before: every span twice, each copy nested in the other.
    assert [s.name for s in exporter.get_finished_spans()] == [
        "chat gpt-4.1-mini",
        "execute_tool check_health",
        "chat gpt-4.1-mini",
        "invoke_agent ops",
    ]


def test_instrumenting_an_agent_again_for_another_provider_is_refused() -> None:
    first, second = TracerProvider(), TracerProvider()
    exporter = InMemorySpanExporter()
    first.add_span_processor(SimpleSpanProcessor(exporter))
    agent = instrument(Agent(name="ops", model=Counting([HEALTH, DONE]), tools=[check_health]), tracer_provider=first)
    # Before: returned as it was, its spans still going to the first provider without a word.
    with pytest.raises(UserError, match="instrumented already"):
        instrument(agent, tracer_provider=second)
    assert instrument(agent) is agent and instrument(agent, tracer_provider=first) is agent  # still no-ops
    agent.run_sync(Thread.start("user_input", {"text": "is staging healthy?"}))
    assert len(exporter.get_finished_spans()) == 4  # every span once, to the first provider
    unset = instrument(Agent(name="ops", model=Counting([DONE])))  # the global provider
    assert instrument(unset) is unset
    with pytest.raises(UserError, match="instrumented already"):
        instrument(unset, tracer_provider=second)


class Closing(Counting):
    """A provider model holding a client's connections, which `aclose` lets go."""

    def __init__(self, answers: Sequence[str]) -> None:
        super().__init__(answers)
        self.closed = 0
        self.api = "responses"

    async def aclose(self) -> None:
        self.closed += 1


async def test_a_traced_model_closes_the_model_it_wraps_and_shows_its_attributes() -> None:
    model = Closing([DONE])
    traced_model = TracedModel(model)
    await traced_model.aclose()
    assert model.closed == 1  # before: AttributeError, the client's connections left open
    assert traced_model.api == "responses"
    await TracedModel(Counting([DONE])).aclose()  # a model with nothing to close: nothing to do
