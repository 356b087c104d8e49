"""Spans for an agent's runs, model calls, tool calls and the human waits between its runs.

`instrument(agent)` wraps its model (one `chat MODEL` span per call, the GenAI semantic
conventions), its `after_step` hook and its tools (an `execute_tool NAME` span from a tool's start to
its outcome, current while the tool runs: see `_tools.py`) and its `run` (an `invoke_agent NAME`
span, the parent of the rest), by making it an instance of a traced subclass of its own class,
which wraps a model or tools given to it later as they are set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from copy import copy, deepcopy
from dataclasses import dataclass
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Tracer

from threadloom import Agent, Event, Thread, Tool, UserError
from threadloom.loop import Save
from threadloom.models import Completion, Model, ModelRequest

from ._context import TRACER, thread_parent, thread_span_context
from ._tools import ToolSpans, TracedTools

__all__ = ["TracedModel", "instrument"]


class TracedModel:
    """A model whose every call is a `chat MODEL` client span (GenAI semantic conventions)."""

    def __init__(self, inner: Model, *, tracer_provider: Any = None) -> None:
        """Wrap `inner`; spans go to `tracer_provider` (the global one when None)."""
        self.inner = inner
        """The model that answers."""
        self._tracer = trace.get_tracer(TRACER, tracer_provider=tracer_provider)

    @property
    def name(self) -> str:
        """The wrapped model's name."""
        return self.inner.name

    @property
    def strategy(self) -> str:
        """The wrapped model's strategy (the agent's default prompt follows it)."""
        return str(getattr(self.inner, "strategy", "prompted"))

    async def complete(self, request: ModelRequest) -> Completion:
        """Ask the wrapped model inside a span; an error ends the span with `error.type`.

        Raises:
            ModelError: What the wrapped model raised.
        """
        attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": self.name}
        for key in ("max_tokens", "temperature", "top_p", "seed"):
            if key in request.settings:
                attributes[f"gen_ai.request.{key}"] = cast("Mapping[str, Any]", request.settings)[key]
        with self._tracer.start_as_current_span(
            f"chat {self.name}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                completion = await self.inner.complete(request)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                raise
            span.set_attribute("gen_ai.response.model", completion.model)
            span.set_attribute("gen_ai.usage.input_tokens", completion.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", completion.usage.output_tokens)
            if completion.stop_reason is not None:
                span.set_attribute("gen_ai.response.finish_reasons", [completion.stop_reason])
            return completion

    async def aclose(self) -> None:
        """Close the wrapped model (its client's connections), if it has anything to close."""
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def __deepcopy__(self, memo: dict[int, Any]) -> TracedModel:
        """A deep copy of the wrapped model, traced with the same tracer (whose provider's lock cannot be copied)."""
        twin = copy(self)
        twin.inner = deepcopy(self.inner, memo)
        return twin

    def __getattr__(self, name: str) -> Any:
        """The wrapped model's other attributes (`settings`, `api`, ...), as they are."""
        if name == "inner":  # not set yet (a copy being made): no lookup of itself, forever
            raise AttributeError(name)
        return getattr(self.inner, name)


def instrument(agent: Agent, *, tracer_provider: Any = None) -> Agent:
    """Make `agent` trace its runs, model calls and tool calls; returns the same agent.

    An agent instrumented already is returned as it is, unless `tracer_provider` names another
    provider than the first call's: its spans would still go to the first, so that is refused.
    What the agent (or a copy of it, `copy.copy` or `copy.deepcopy`) is given later is traced too,
    on the way in: a model put into `agent.model`, tools put into `agent.tools` or `agent.prefetch`.

    Raises:
        UserError: `agent` is instrumented already, for another tracer provider.

    Example:
        ```python
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from threadloom import Agent, Thread
        from threadloom.models import ScriptedModel
        from threadloom.otel import instrument

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        agent = Agent(name="greeter", model=ScriptedModel(['{"intent": "done_for_now", "message": "hi"}']))
        instrument(agent, tracer_provider=provider).run_sync(Thread.start("user_input", {"text": "hi"}))
        assert [s.name for s in exporter.get_finished_spans()] == ["chat scripted", "invoke_agent greeter"]
        ```
    """
    if isinstance(agent, _TracedAgent):  # wrapping it again would make every span twice
        first = agent.tracing.provider
        if tracer_provider is not None and tracer_provider is not first:
            where = "the global tracer provider" if first is None else f"tracer provider {first!r}"
            raise UserError(
                f"Agent {agent.name!r} is instrumented already, its spans going to {where}; "
                "instrument a new Agent to send spans to another"
            )
        return agent
    tracer = trace.get_tracer(TRACER, tracer_provider=tracer_provider)
    tools = ToolSpans(tracer, agent.after_step)
    # Its class becomes a traced subclass of its own, so a Runtime or Worker driving it, and a copy, are traced too.
    base = type(agent)
    agent.__class__ = _TracedAgent if base is Agent else type(base.__name__, (_TracedAgent, base), {})
    traced = cast("_TracedAgent", agent)
    traced.tracing = _Tracing(tracer_provider, tracer, tools)
    traced.after_step = tools
    # Put back through the traced class's `__setattr__`, which wraps them as it wraps what comes later.
    traced.model, traced.tools, traced.prefetch = agent.model, agent.tools, agent.prefetch
    return agent


@dataclass(frozen=True, slots=True)
class _Tracing:
    """What an instrumented agent traces with."""

    provider: Any
    tracer: Tracer
    tools: ToolSpans

    def __deepcopy__(self, memo: dict[int, Any]) -> _Tracing:
        """Itself: a deep copy of the agent traces to the same provider (whose lock cannot be copied)."""
        return self

    def held(self, name: str, value: Any) -> Any:
        """`value`, traced, to be the agent's attribute `name`: its model, tools and prefetch are."""
        if name == "model" and not isinstance(value, TracedModel):  # one traced already keeps its spans
            return TracedModel(value, tracer_provider=self.provider)
        if name == "tools":  # the agent's own, put back, stays the same dict
            held = isinstance(value, TracedTools) and value.spans is self.tools
            return value if held else TracedTools(self.tools, cast("dict[str, Tool]", value))
        if name == "prefetch":
            return tuple(self.tools.traced(item) for item in cast("tuple[Tool, ...]", value))
        return value


class _TracedAgent(Agent):
    """An instrumented agent: its `run` is an `invoke_agent NAME` span around the agent's own.

    What it is given after `instrument` is traced on the way in: a model swapped into `agent.model`,
    tools put into `agent.tools` (a `TracedTools`), a new `agent.prefetch`, so a step or a loop of
    the user's own pays nothing more than an untraced agent's does to read them.
    """

    tracing: _Tracing

    def __setattr__(self, name: str, value: Any) -> None:
        tracing: _Tracing | None = self.__dict__.get("tracing")
        super().__setattr__(name, value if tracing is None else tracing.held(name, value))

    async def run(self, thread: Thread, *, save: Save | None = None) -> Thread:
        """The agent's own `run`, inside an `invoke_agent` span (see `Agent.run`)."""
        tracing = self.tracing
        parent = thread_parent(thread.id)
        # Inside the caller's span (parent None), that span is the parent and the thread's trace is linked.
        links = [Link(thread_span_context(thread.id))] if parent is None else []
        attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": self.name,
            "threadloom.thread.id": thread.id,
            "threadloom.thread.events": len(thread),
        }
        with (
            tracing.tracer.start_as_current_span(
                f"invoke_agent {self.name}", context=parent, links=links, attributes=attributes
            ) as span,
            tracing.tools.running(),
        ):
            _human_waits(tracing.tracer, thread)
            done = await super().run(thread, save=save)
            usage = _usage(done.events[len(thread) :])
            span.set_attribute("threadloom.thread.status", done.status)
            span.set_attribute("gen_ai.usage.input_tokens", usage[0])
            span.set_attribute("gen_ai.usage.output_tokens", usage[1])
            return done


def _human_waits(tracer: Tracer, thread: Thread) -> None:
    """A `wait_for_human` span for each answer that came in since the last run, from request to answer.

    The wait happened between two runs, perhaps in no process at all, so its span is made when the
    run it resumed starts, with the request's and the answer's times as its own.
    """
    events = list(thread.events)
    index = len(events)
    while index > 0 and events[index - 1].type in ("approval", "human_response"):
        index -= 1
    for answer in events[index:]:
        data = cast("dict[str, Any]", answer.data) if isinstance(answer.data, dict) else {}
        request = thread.find(str(data.get("call_id") or data.get("request_id") or ""))
        if request is None:
            continue
        attributes: dict[str, Any] = {"threadloom.human.request": request.type, "threadloom.human.answer": answer.type}
        if answer.type == "approval":
            attributes["threadloom.human.approved"] = bool(data.get("approved"))
        span = tracer.start_span("wait_for_human", start_time=_nanoseconds(request), attributes=attributes)
        span.end(end_time=_nanoseconds(answer))


def _nanoseconds(event: Event) -> int:
    return int(event.at.timestamp() * 1_000_000_000)


def _usage(events: Iterable[Event]) -> tuple[int, int]:
    tokens_in = tokens_out = 0
    for event in events:
        record = cast("dict[str, Any]", event.data).get("model") if isinstance(event.data, dict) else None
        if isinstance(record, dict):
            model = cast("dict[str, Any]", record)
            tokens_in += int(model.get("input_tokens") or 0)
            tokens_out += int(model.get("output_tokens") or 0)
    return tokens_in, tokens_out
