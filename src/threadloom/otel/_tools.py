"""`execute_tool` spans: from a call's `tool_started` to its outcome, the current span while the tool runs.

The agent's `after_step` hook opens a call's span at its `tool_started` and ends it at the call's
result or error; each tool's function is wrapped so that this span is the current one while it
runs, so spans the tool starts (an HTTP client's, say) are its children. Each run keeps its open
spans apart (`ToolSpans.running`): a run that stops before a call's outcome is recorded (cancelled,
its process stopping, a save that failed) ends them as `interrupted`, and the call, run again when
the thread is resumed (an idempotent tool, with no second `tool_started`), gets a span of its own.
A sync tool cannot be stopped (it runs in a worker thread): its interrupted span ends when its
function returns, so what it does after the cancel still nests in it.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from copy import deepcopy
from dataclasses import dataclass, field, replace
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer

from threadloom import Event, Thread, Tool
from threadloom.intents import idempotency_key
from threadloom.loop import AfterStep

__all__ = ["ToolSpans", "TracedTools"]


@dataclass(slots=True)
class _RunSpans:
    """One traced run's open tool spans, shared with its sync tools' worker threads (hence the lock)."""

    open: dict[str, Span] = field(default_factory=dict[str, Span])
    busy: set[str] = field(default_factory=set[str])  # calls whose sync function is running in a thread
    stopped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


# The traced run going on in this context (None outside one). Per run, not per agent: an agent may
# run many threads at once, and a sync tool's worker thread gets a copy of the context.
_RUNNING: ContextVar[_RunSpans | None] = ContextVar("threadloom_otel_tool_spans", default=None)
_LOOSE_MAX = 1024  # open spans kept for loops driven without the traced run; the oldest go first


class ToolSpans:
    """An `after_step` hook: a span from each `tool_started` to the tool's result or error."""

    def __init__(self, tracer: Tracer, inner: AfterStep | None) -> None:
        """Make spans with `tracer`, then call the agent's own hook `inner`."""
        self._tracer = tracer
        self._inner = inner
        # The spans of a loop driven without the traced `run` (no run of its own to keep them), by
        # call id with their thread's id, and each thread's open call, ended once its thread goes on.
        self._loose: dict[str, tuple[str, Span]] = {}
        self._loose_calls: dict[str, str] = {}

    def __call__(self, thread: Thread, event: Event) -> Any:
        """Open or end the span of the call `event` is about, then call the agent's own hook."""
        data = cast("dict[str, Any]", event.data) if isinstance(event.data, dict) else {}
        call_id = str(data.get("call_id", ""))
        run = _RUNNING.get()
        if run is None:
            self._moved_on(thread.id, call_id)
        if event.type == "tool_started":
            call = thread.find(call_id)
            policy = (
                cast("dict[str, Any]", call.data).get("policy")
                if call is not None and isinstance(call.data, dict)
                else None
            )
            span = self._start(str(data.get("intent")), call_id, str(policy or "auto"))
            if run is None:
                self._keep_loose(thread.id, call_id, span)
            else:
                with run.lock:
                    run.open[call_id] = span
        elif event.type in ("tool_response", "error"):
            span = self._loose.pop(call_id, (None, None))[1] if run is None else _pop(run, call_id)
            if span is not None:
                if event.type == "error":
                    span.set_attribute("threadloom.tool.outcome", "error")
                    span.set_attribute("error.type", str(data.get("error_type")))
                    span.set_status(StatusCode.ERROR, str(data.get("message", "")))
                else:
                    span.set_attribute("threadloom.tool.outcome", "ok")
                span.end()
        if self._inner is None:
            return None
        return self._inner(thread, event)

    @contextmanager
    def running(self) -> Generator[None, None, None]:
        """Around a run: its tool spans are its own, and any its end leaves open is ended as interrupted."""
        run = _RunSpans()
        token = _RUNNING.set(run)
        error_type = "_OTHER"  # OpenTelemetry's `error.type` when none is known
        try:
            yield
        except BaseException as exc:  # CancelledError too: the run stopped between a start and its outcome
            error_type = type(exc).__name__
            raise
        finally:
            _RUNNING.reset(token)
            with run.lock:
                run.stopped = True
                for call_id, span in list(run.open.items()):
                    _interrupted(span, error_type)
                    if call_id not in run.busy:  # a sync tool still in its thread ends its span on returning
                        del run.open[call_id]
                        span.end()

    def __deepcopy__(self, memo: dict[int, Any]) -> ToolSpans:
        """Itself: a deep copy of the agent keeps its tracer, and its tools' wrappers point here."""
        return self

    def traced(self, tool: Tool) -> Tool:
        """`tool` with its function run inside its call's span (the tool's own fields and class kept).

        Anything not a `Tool` is left as it is, for the loop to refuse as it would untraced.
        """
        if not isinstance(tool, Tool):  # pyright: ignore[reportUnnecessaryIsInstance]
            return tool
        function = tool.function
        if getattr(function, _MARK, None) is self:
            return tool
        if inspect.iscoroutinefunction(function):
            run = cast("Callable[..., Awaitable[Any]]", function)

            @functools.wraps(function)
            async def in_span_async(*args: Any, **kwargs: Any) -> Any:
                with self._current(tool, in_thread=False):
                    return await run(*args, **kwargs)

            wrapped: Callable[..., Any] = in_span_async
        else:
            # A sync tool runs in a worker thread, with a copy of the context: the span is made current there.
            @functools.wraps(function)
            def in_span(*args: Any, **kwargs: Any) -> Any:
                with self._current(tool, in_thread=True):
                    return function(*args, **kwargs)

            wrapped = in_span
        setattr(wrapped, _MARK, self)  # a name in a constant: found again with getattr
        return replace(tool, function=wrapped)

    def _moved_on(self, thread_id: str, call_id: str) -> None:
        """In a loop of its own: a thread's event about another call than its open one ends that one."""
        open_call = self._loose_calls.get(thread_id)
        if open_call is not None and open_call != call_id:
            del self._loose_calls[thread_id]
            kept = self._loose.pop(open_call, None)
            if kept is not None:
                _interrupted(kept[1], "_OTHER")
                kept[1].end()

    def _keep_loose(self, thread_id: str, call_id: str, span: Span) -> None:
        if len(self._loose) >= _LOOSE_MAX:  # threads never seen again: their calls' spans end, oldest first
            oldest = next(iter(self._loose))
            old_thread, old_span = self._loose.pop(oldest)
            if self._loose_calls.get(old_thread) == oldest:
                del self._loose_calls[old_thread]
            _interrupted(old_span, "_OTHER")
            old_span.end()
        self._loose[call_id] = (thread_id, span)
        self._loose_calls[thread_id] = call_id

    @contextmanager
    def _current(self, tool: Tool, *, in_thread: bool) -> Generator[None, None, None]:
        """The running call's span as the current one; nothing for a tool called outside the loop."""
        call_id = idempotency_key()  # the loop gives each run of a call its call id
        run = _RUNNING.get()
        span: Span | None = None
        if call_id is not None and run is None:
            span = self._loose.get(call_id, (None, None))[1]
        elif call_id is not None and run is not None:
            with run.lock:
                span = run.open.get(call_id)
                if span is None and not run.stopped:
                    # A call started in an earlier run, run again on resuming (no `tool_started` this time).
                    span = run.open[call_id] = self._start(tool.name, call_id, tool.policy, rerun=True)
                if span is not None and in_thread:
                    run.busy.add(call_id)
        if span is None:
            yield
            return
        try:
            # The loop records a failure (redacted) as the call's error event, which ends the span: not here.
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                yield
        finally:
            if in_thread and run is not None and call_id is not None:
                _returned(run, call_id, span)

    def _start(self, intent: str, call_id: str, policy: str, *, rerun: bool = False) -> Span:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": intent,
            "gen_ai.tool.call.id": call_id,
            "threadloom.tool.policy": policy,
        }
        if rerun:
            attributes["threadloom.tool.rerun"] = True
        return self._tracer.start_span(f"execute_tool {intent}", kind=SpanKind.INTERNAL, attributes=attributes)


class TracedTools(dict[str, Tool]):
    """An instrumented agent's `tools`: each tool put in is wrapped to run inside its call's span.

    Wrapped on the way in, so a loop of the user's own that runs `agent.tools` finds every tool
    traced, also one put in after `instrument`; reading it costs what a dict's read does.
    """

    __slots__ = ("spans",)

    def __init__(self, spans: ToolSpans, tools: Mapping[str, Tool] | Iterable[tuple[str, Tool]] = ()) -> None:
        """Hold `tools`, each run inside its span by `spans`."""
        super().__init__()
        self.spans = spans  # what wraps the tools put in
        self.update(tools)

    def __setitem__(self, name: str, tool: Tool) -> None:
        super().__setitem__(name, self.spans.traced(tool))

    def update(self, tools: Mapping[str, Tool] | Iterable[tuple[str, Tool]] = (), /, **more: Tool) -> None:  # pyright: ignore[reportIncompatibleMethodOverride]
        """Put in each of `tools` and `more`, wrapped."""
        for name, item in (*dict(tools).items(), *more.items()):
            self[name] = item

    def setdefault(self, name: str, default: Tool) -> Tool:
        """The tool named `name`, putting in `default` (wrapped) when there is none."""
        if name not in self:
            self[name] = default
        return self[name]

    def __ior__(self, tools: Mapping[str, Tool] | Iterable[tuple[str, Tool]]) -> TracedTools:  # pyright: ignore[reportIncompatibleMethodOverride]
        self.update(tools)
        return self

    def copy(self) -> TracedTools:
        """A shallow copy, its tools wrapped as they are."""
        return TracedTools(self.spans, self)

    def __deepcopy__(self, memo: dict[int, Any]) -> TracedTools:
        """Deep copies of the tools, still wrapped by the same `ToolSpans`."""
        return TracedTools(self.spans, {name: deepcopy(item, memo) for name, item in self.items()})


_MARK = "_threadloom_tool_spans"  # on a wrapped function: the `ToolSpans` that wrapped it


def _pop(run: _RunSpans, call_id: str) -> Span | None:
    with run.lock:
        return run.open.pop(call_id, None)


def _returned(run: _RunSpans, call_id: str, span: Span) -> None:
    """A sync tool's function returned: if its run stopped meanwhile, its span (interrupted) ends now."""
    with run.lock:
        run.busy.discard(call_id)
        if run.stopped and run.open.get(call_id) is span:
            del run.open[call_id]
            span.end()


def _interrupted(span: Span, error_type: str) -> None:
    span.set_attribute("threadloom.tool.outcome", "interrupted")
    span.set_attribute("error.type", error_type)
    span.set_status(StatusCode.ERROR, "the run stopped before the tool's outcome was recorded")
