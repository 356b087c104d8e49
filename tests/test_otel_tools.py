"""The `execute_tool` spans: what they say of a failure, and that every one of them ends."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pydantic import SecretStr

from threadloom import Agent, Thread, Tool, tool
from threadloom.loop import run as run_loop
from threadloom.models import ScriptedModel
from threadloom.otel import instrument

DONE = '{"intent": "done_for_now", "message": "k"}'


@tool
def login(user: str, api_key: SecretStr) -> str:
    """Log in."""
    raise PermissionError(f"key {api_key.get_secret_value()} was rejected for {user}")


def traced(agent: Agent) -> tuple[Agent, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return instrument(agent, tracer_provider=provider), exporter


def tool_spans(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith("execute_tool ")]


def test_a_tool_error_quoting_its_secret_argument_keeps_it_out_of_the_span() -> None:
    answers = ['{"intent": "login", "user": "ada", "api_key": "sk-live-abcdef123456"}', DONE]
    agent, exporter = traced(Agent(name="ops", model=ScriptedModel(answers), tools=[login]))
    thread = agent.run_sync(Thread.start("user_input", {"text": "go"}))
    # Before: the status description was the exception's text as raised, the key in it.
    [span] = tool_spans(exporter.get_finished_spans())
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "PermissionError: key [REDACTED] was rejected for ada"
    assert "sk-live-abcdef123456" not in str(thread.events[-2].data)  # the error event itself


FETCH = '{"intent": "fetch", "url": "https://example.com"}'


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


@pytest.mark.parametrize("where", ["in the tool", "in the save before it"])
async def test_a_run_stopped_before_a_tools_outcome_ends_its_span_and_the_rerun_has_its_own(where: str) -> None:
    stopped = asyncio.Event()
    runs: list[str] = []

    @tool(idempotent=True)
    async def fetch(url: str) -> str:
        """Fetch a page."""
        runs.append(url)
        if where == "in the tool" and len(runs) == 1:
            stopped.set()
            await asyncio.Event().wait()  # hangs until the run is cancelled
        return "a page"

    saved: list[Thread] = []

    async def save(thread: Thread) -> Thread:
        saved.append(thread)
        if where == "in the save before it" and len(saved) == 1:
            stopped.set()  # the save of the call and its `tool_started`: the tool has not run yet
            await asyncio.Event().wait()
        return thread

    agent, exporter = traced(Agent(name="ops", model=ScriptedModel([FETCH, DONE]), tools=[fetch]))
    running = asyncio.create_task(agent.run(Thread.start("user_input", {"text": "go"}), save=save))
    await stopped.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    # Before: the span stayed open for good (never exported), and the agent kept it.
    [first] = tool_spans(exporter.get_finished_spans())
    [first_run] = named(exporter.get_finished_spans(), "invoke_agent ops")
    assert first.status.status_code == StatusCode.ERROR and parent_of(first) == span_id(first_run)
    assert (first.attributes or {})["threadloom.tool.outcome"] == "interrupted"
    assert (first.attributes or {})["error.type"] == "CancelledError"

    # Resumed, the idempotent call runs again (no second `tool_started`): a span of its own, under
    # the run that made it. Before: none, and the result ended the first run's span.
    interrupted = saved[-1]
    assert interrupted.events[-1].type == "tool_started"
    done = await agent.run(interrupted)
    assert done.status == "done" and runs == ["https://example.com"] * (2 if where == "in the tool" else 1)
    spans = exporter.get_finished_spans()
    _, second = tool_spans(spans)
    second_run = named(spans, "invoke_agent ops")[1]
    assert parent_of(second) == span_id(second_run) and second.start_time is not None
    assert first.end_time is not None and second.start_time > first.end_time
    assert (second.attributes or {})["threadloom.tool.outcome"] == "ok"
    assert (second.attributes or {})["gen_ai.tool.call.id"] == (first.attributes or {})["gen_ai.tool.call.id"]


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_span_a_tool_starts_is_a_child_of_its_execute_tool_span(kind: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    inside = provider.get_tracer("an http client")

    def get() -> str:
        with inside.start_as_current_span("GET"):
            return "a page"

    async def fetch_async(url: str) -> str:
        """Fetch a page."""
        return get()

    def fetch_sync(url: str) -> str:
        """Fetch a page."""
        return get()

    fetch = tool(name="fetch")(fetch_async if kind == "async" else fetch_sync)
    agent = instrument(Agent(name="ops", model=ScriptedModel([FETCH, DONE]), tools=[fetch]), tracer_provider=provider)
    agent.run_sync(Thread.start("user_input", {"text": "go"}))
    spans = exporter.get_finished_spans()
    [get_span] = named(spans, "GET")
    [tool_span] = tool_spans(spans)
    # Before: the tool's span was never current, so GET hung under invoke_agent.
    assert parent_of(get_span) == span_id(tool_span)
    assert parent_of(tool_span) == span_id(named(spans, "invoke_agent ops")[0])
    assert [s.name for s in spans] == [
        "chat scripted",
        "GET",
        "execute_tool fetch",
        "chat scripted",
        "invoke_agent ops",
    ]


async def test_an_mcp_tools_call_goes_to_its_server_inside_its_execute_tool_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mcp import Client
    from opentelemetry import trace

    from test_mcp import echo_server
    from threadloom.mcp import MCPServer, mcp_tools

    current: list[int] = []
    async with MCPServer(Client(echo_server({"label": {"properties": {"tag": {"type": "string"}}}}))) as server:
        send = server.call_tool

        async def seen(*args: Any, **kwargs: Any) -> Any:
            current.append(trace.get_current_span().get_span_context().span_id)
            return await send(*args, **kwargs)

        monkeypatch.setattr(server, "call_tool", seen)
        tools = await mcp_tools(server, default_policy="auto")
        model = ScriptedModel(['{"intent": "label", "tag": "t"}', DONE])
        agent, exporter = traced(Agent(name="ops", model=model, tools=tools))
        thread = await agent.run(Thread.start("user_input", {"text": "go"}))
    assert thread.events[-2].data == {"call_id": thread.events[-4].id, "intent": "label", "result": {"tag": "t"}}
    [span] = named(exporter.get_finished_spans(), "execute_tool label")
    # The server's request is a child of the tool's span.
    assert span.context is not None and current == [span.context.span_id]


def fetching(provider: TracerProvider, label: str, *, block: threading.Event | None = None) -> Tool:
    """A sync `fetch` tool whose GET span is named after `label`; it waits for `block` first, if given."""
    inside = provider.get_tracer("an http client")

    @tool(name="fetch")
    def fetch(url: str) -> str:
        """Fetch a page."""
        if block is not None:
            block.wait(5)
        with inside.start_as_current_span(f"GET {label}"):
            return label

    return fetch


def provided() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_a_tool_given_to_the_agent_after_instrument_runs_inside_its_span() -> None:
    provider, exporter = provided()
    agent = Agent(name="ops", model=ScriptedModel([FETCH, DONE]), tools=[fetching(provider, "first")])
    instrument(agent, tracer_provider=provider)
    later = fetching(provider, "later")
    agent.tools["fetch"] = later
    thread = agent.run_sync(Thread.start("user_input", {"text": "go"}))
    assert thread.events[-2].data == {"call_id": thread.events[-4].id, "intent": "fetch", "result": "later"}
    spans = exporter.get_finished_spans()
    [get_span] = named(spans, "GET later")
    [tool_span] = tool_spans(spans)
    # Before: the tool put in after `instrument` was never wrapped, so GET hung under invoke_agent.
    assert parent_of(get_span) == span_id(tool_span)
    # The agent holds it wrapped on the way in (so a loop of one's own runs it in its span too):
    # the same class and fields, the given function inside the wrapper.
    held = agent.tools["fetch"]
    assert type(held) is type(later) and held.name == later.name and held.policy == later.policy
    assert getattr(held.function, "__wrapped__", None) is later.function


def test_a_copy_of_an_instrumented_agent_runs_its_own_tools_in_their_spans() -> None:
    provider, exporter = provided()
    agent = instrument(
        Agent(name="ops", model=ScriptedModel([FETCH, DONE]), tools=[fetching(provider, "first")]),
        tracer_provider=provider,
    )
    twin = copy.copy(agent)
    twin.tools = {"fetch": fetching(provider, "twin")}
    thread = twin.run_sync(Thread.start("user_input", {"text": "go"}))
    # Before: the copy's `run` was the original's, so the original's tools ran.
    assert thread.events[-2].data == {"call_id": thread.events[-4].id, "intent": "fetch", "result": "twin"}
    spans = exporter.get_finished_spans()
    [get_span] = named(spans, "GET twin")
    assert parent_of(get_span) == span_id(tool_spans(spans)[0])
    assert parent_of(tool_spans(spans)[0]) == span_id(named(spans, "invoke_agent ops")[0])


async def test_a_sync_tool_still_running_after_its_run_was_cancelled_keeps_its_span_open_until_it_returns() -> None:
    provider, exporter = provided()
    block, started = threading.Event(), threading.Event()
    fetch = fetching(provider, "late", block=block)
    function = fetch.function

    def signalling(url: str) -> str:
        started.set()
        return function(url)

    fetch = dataclasses.replace(fetch, function=signalling)
    agent = instrument(Agent(name="ops", model=ScriptedModel([FETCH, DONE]), tools=[fetch]), tracer_provider=provider)
    running = asyncio.create_task(agent.run(Thread.start("user_input", {"text": "go"})))
    await asyncio.to_thread(started.wait, 5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    block.set()  # Python cannot stop the thread: the tool goes on and makes its GET span now
    for _ in range(500):
        finished = exporter.get_finished_spans()
        if named(finished, "GET late") and named(finished, "execute_tool fetch"):
            break
        await asyncio.sleep(0.01)
    spans = exporter.get_finished_spans()
    [get_span] = named(spans, "GET late")
    [tool_span] = tool_spans(spans)
    assert parent_of(get_span) == span_id(tool_span)
    assert (tool_span.attributes or {})["threadloom.tool.outcome"] == "interrupted"
    # Before: the tool's span ended with the run, and the GET it made later hung under an ended span.
    assert tool_span.end_time is not None and get_span.end_time is not None
    assert tool_span.end_time >= get_span.end_time


async def test_a_loop_driven_with_the_hook_alone_ends_a_stopped_calls_span_when_its_thread_goes_on() -> None:
    provider, exporter = provided()
    agent = instrument(
        Agent(name="ops", model=ScriptedModel([FETCH, FETCH, DONE]), tools=[fetching(provider, "x")]),
        tracer_provider=provider,
    )
    start = Thread.start("user_input", {"text": "go"})
    saved: list[Thread] = []

    async def failing(thread: Thread) -> Thread:
        saved.append(thread)
        if len(saved) == 1:
            raise ConnectionError("the store went away")  # the call and its start, not saved
        return thread

    with pytest.raises(ConnectionError):
        await run_loop(start, agent.step, tools=agent.tools, after_step=agent.after_step, save=failing)
    assert tool_spans(exporter.get_finished_spans()) == []  # open: the call may still have an outcome
    # The thread goes on from before the call (its last save), with a new call: the old one is stale.
    done = await run_loop(start, agent.step, tools=agent.tools, after_step=agent.after_step, save=failing)
    assert done.status == "done"
    first, second = tool_spans(exporter.get_finished_spans())
    # Before: the first call's span stayed open in the agent for good, never exported.
    assert (first.attributes or {})["threadloom.tool.outcome"] == "interrupted"
    assert (second.attributes or {})["threadloom.tool.outcome"] == "ok"
