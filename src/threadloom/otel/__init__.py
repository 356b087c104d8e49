"""OpenTelemetry spans for runs, model calls, tool calls, human waits and store operations (extra `otel`).

Only `opentelemetry-api` is needed; the application brings the SDK and an exporter.
`instrument(agent)` traces what the agent already offers for this (factor 8: the loop is yours):
its model, its `after_step` hook and its `run`. `TracedStore(store)` traces each operation of a
`ThreadStore` (give it to the `Runtime`). A thread's spans share one trace, whatever process makes
them: without a span already current, a run's or a store operation's parent is a span context
derived from the thread id (`thread_span_context`), so a thread paused in one worker and resumed in
another reads as one trace. No event is written for this; the thread stays the only state.
"""

try:  # before the modules that import it, to name the extra when it is missing
    from opentelemetry import trace as _api
except ImportError as exc:  # pragma: no cover - the extra is installed in the dev environment
    raise ImportError("threadloom.otel needs OpenTelemetry: pip install 'threadloom[otel]'") from exc

from ._agent import TracedModel, instrument
from ._context import thread_span_context
from ._store import TracedStore

del _api

__all__ = ["TracedModel", "TracedStore", "instrument", "thread_span_context"]
