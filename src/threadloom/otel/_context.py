"""The tracer's name, and the span context a thread's spans descend from in every process."""

from __future__ import annotations

import hashlib

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

__all__ = ["TRACER", "thread_parent", "thread_span_context"]

TRACER = "threadloom"
"""The instrumentation scope of every threadloom span."""


def thread_span_context(thread_id: str) -> SpanContext:
    """The span context every run of `thread_id` descends from: the same in any process.

    Example:
        ```python
        from threadloom.otel import thread_span_context

        assert thread_span_context("th_1").trace_id == thread_span_context("th_1").trace_id
        assert thread_span_context("th_1").trace_id != thread_span_context("th_2").trace_id
        ```
    """
    digest = hashlib.sha256(thread_id.encode()).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:24], "big") or 1
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def thread_parent(thread_id: str) -> Context | None:
    """The parent for a span about `thread_id`: the current span if there is one (None), else the thread's."""
    if trace.get_current_span().get_span_context().is_valid:
        return None
    return trace.set_span_in_context(NonRecordingSpan(thread_span_context(thread_id)))
