"""`execute_tool` spans: from a call's `tool_started` to its outcome, the current span while the tool runs.

The agent's `after_step` hook opens a call's span at its `tool_started` and ends it at the call's
result or error; each tool's function is wrapped so that this span is the current one while it
runs, so spans the tool starts (an HTTP client's, say) are its children. Each run keeps its open
spans apart (`ToolSpans.running`): a run that stops before a call's outcome is recorded (cancelled,
its process stopping, a save that failed) ends them as `interrupted`, and the call, run again when
the thread is resumed (an idempotent tool, with no second `tool_started`), gets a span of its own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import replace
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer

from threadloom import Event, Thread, Tool
from threadloom.intents import idempotency_key
from threadloom.loop import AfterStep

__all__ = ["ToolSpans"]

# The open spans of the traced run going on in this context, by call id (None outside one). Per
# run, not per agent: an agent may run many threads at once, and a sync tool's worker thread gets a
# copy of the context that holds the same dict.
_RUNNING: ContextVar[dict[str, Span] | None] = ContextVar("threadloom_otel_tool_spans", default=None)


class ToolSpans:
    """An `after_step` hook: a span from each `tool_started` to the tool's result or error."""

    def __init__(self, tracer: Tracer, inner: AfterStep | None) -> None:
        """Make spans with `tracer`, then call the agent's own hook `inner`."""
        self._tracer = tracer
        self._inner = inner
        # The spans of a loop driven without the traced `run` (no run's own dict to keep them in).
        self._loose: dict[str, Span] = {}

    def __call__(self, thread: Thread, event: Event) -> Any:
        """Open or end the span of the call `event` is about, then call the agent's own hook."""
        data = cast("dict[str, Any]", event.data) if isinstance(event.data, dict) else {}
        call_id = str(data.get("call_id", ""))
        spans = self._open()
        if event.type == "tool_started":
            call = thread.find(call_id)
            policy = (
                cast("dict[str, Any]", call.data).get("policy")
                if call is not None and isinstance(call.data, dict)
                else None
            )
            spans[call_id] = self._start(str(data.get("intent")), call_id, str(policy or "auto"))
        elif call_id in spans and event.type in ("tool_response", "error"):
            span = spans.pop(call_id)
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
        spans: dict[str, Span] = {}
        token = _RUNNING.set(spans)
        error_type = "_OTHER"  # OpenTelemetry's `error.type` when none is known
        try:
            yield
        except BaseException as exc:  # CancelledError too: the run stopped between a start and its outcome
            error_type = type(exc).__name__
            raise
        finally:
            _RUNNING.reset(token)
            for span in spans.values():
                span.set_attribute("threadloom.tool.outcome", "interrupted")
                span.set_attribute("error.type", error_type)
                span.set_status(StatusCode.ERROR, "the run stopped before the tool's outcome was recorded")
                span.end()

    def wrap(
        self, tools: Mapping[str, Tool], prefetch: Sequence[Tool]
    ) -> tuple[dict[str, Tool], tuple[Tool, ...]] | None:
        """`tools` and `prefetch`, each run inside its call's span; None when they all are already."""
        if all(getattr(t.function, _MARK, None) is self for t in (*tools.values(), *prefetch)):
            return None
        return {name: self.traced(item) for name, item in tools.items()}, tuple(self.traced(t) for t in prefetch)

    def traced(self, tool: Tool) -> Tool:
        """`tool` with its function run inside its call's span (the tool's own fields and class kept)."""
        function = tool.function
        if getattr(function, _MARK, None) is self:
            return tool
        if inspect.iscoroutinefunction(function):
            run = cast("Callable[..., Awaitable[Any]]", function)

            @functools.wraps(function)
            async def in_span_async(*args: Any, **kwargs: Any) -> Any:
                with self._current(tool):
                    return await run(*args, **kwargs)

            wrapped: Callable[..., Any] = in_span_async
        else:
            # A sync tool runs in a worker thread, with a copy of the context: the span is made current there.
            @functools.wraps(function)
            def in_span(*args: Any, **kwargs: Any) -> Any:
                with self._current(tool):
                    return function(*args, **kwargs)

            wrapped = in_span
        setattr(wrapped, _MARK, self)  # a name in a constant: found again with getattr
        return replace(tool, function=wrapped)

    def _open(self) -> dict[str, Span]:
        running = _RUNNING.get()
        return self._loose if running is None else running

    def _current(self, tool: Tool) -> AbstractContextManager[Any]:
        """The running call's span as the current one; nothing for a tool called outside the loop."""
        call_id = idempotency_key()  # the loop gives each run of a call its call id
        spans = self._open()
        span = None if call_id is None else spans.get(call_id)
        if span is None and call_id is not None and _RUNNING.get() is not None:
            # A call started in an earlier run, run again on resuming (no `tool_started` this time).
            span = spans[call_id] = self._start(tool.name, call_id, tool.policy, rerun=True)
        if span is None:
            return nullcontext()
        # The loop records a failure (redacted) as the call's error event, which ends the span: not here.
        return trace.use_span(span, record_exception=False, set_status_on_exception=False)

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


_MARK = "_threadloom_tool_spans"  # on a wrapped function: the `ToolSpans` that wrapped it
