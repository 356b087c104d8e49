"""Spans for store operations: a `ThreadStore` that makes one `store OPERATION` client span per call.

The span follows OpenTelemetry's database conventions (`db.system.name`, `db.operation.name`, kind
client) and names the thread it touches. Inside a run, a save is a child of the run's span; outside
one (a launch, an approval, a worker's release), an operation on a thread descends from the
thread's own span context, so it lands in the thread's trace in whatever process it runs. A claim
touches no one thread: it is a span of its own that links to each thread it leased.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Generator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from threadloom.state import Status
from threadloom.store import StoreCounts, ThreadStore, ThreadSummary, open_store
from threadloom.thread import Thread

from ._context import TRACER, thread_parent, thread_span_context

__all__ = ["TracedStore"]

# `db.system.name` of the stores threadloom ships (OpenTelemetry's own names where it has one).
_SYSTEMS = {"SQLiteStore": "sqlite", "PostgresStore": "postgresql", "MemoryStore": "memory"}


class TracedStore:
    """A `ThreadStore` whose every operation is a span; it gives the work to the store it wraps.

    Example:
        ```python
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from threadloom import Agent, Event, Runtime
        from threadloom.models import ScriptedModel
        from threadloom.otel import TracedStore, instrument

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        agent = Agent(name="greeter", model=ScriptedModel(['{"intent": "done_for_now", "message": "hi"}']))
        store = TracedStore("memory://", tracer_provider=provider)
        with Runtime(store=store, agents=[instrument(agent, tracer_provider=provider)]) as runtime:
            runtime.launch_sync("greeter", Event("user_input", {"text": "hello"}))
            runtime.run_until_idle_sync()
        spans = exporter.get_finished_spans()
        run = next(s for s in spans if s.name == "invoke_agent greeter")
        saves = [s for s in spans if s.name == "store append"]
        # The launch's append is the thread's (no run yet); the run's save is a child of its span.
        assert [s.parent.span_id == run.context.span_id for s in saves] == [False, True]
        assert {s.context.trace_id for s in saves} == {run.context.trace_id}  # one trace for the thread
        ```

    The lease-keeping calls are traced too (`claim`, `renew`, `release`); `wait_for_work`, an idle
    worker's wait, is not (it would be a span every poll).
    """

    def __init__(self, store: str | ThreadStore, *, tracer_provider: Any = None) -> None:
        """Wrap `store` (a `ThreadStore`, or a URL opened on first use); spans go to `tracer_provider` (the global one when None)."""
        self._url = store if isinstance(store, str) else None
        self._store: ThreadStore | None = None if isinstance(store, str) else store
        self._opening = asyncio.Lock()
        self._tracer = trace.get_tracer(TRACER, tracer_provider=tracer_provider)

    @property
    def wrapped(self) -> ThreadStore | str:
        """The store it wraps, or the URL it opens that store from while none is open."""
        return str(self._url) if self._store is None else self._store

    async def inner(self) -> ThreadStore:
        """The wrapped store, opened on first use when given as a URL."""
        if self._store is None:
            async with self._opening:
                if self._store is None:
                    self._store = await open_store(str(self._url))
        return self._store

    @contextmanager
    def _span(
        self, store: ThreadStore, operation: str, thread_id: str | None = None, **attributes: Any
    ) -> Generator[Span, None, None]:
        # The SDK records an exception that leaves the span and marks the span an error; `error.type`
        # says which, as the GenAI spans do (a VersionConflict is how optimistic appends lose a race).
        named = type(store).__name__
        attributes = {
            "db.system.name": _SYSTEMS.get(named, named),
            "db.operation.name": operation,
            **({} if thread_id is None else {"threadloom.thread.id": thread_id}),
            **{key: value for key, value in attributes.items() if value is not None},
        }
        parent = None if thread_id is None else thread_parent(thread_id)
        with self._tracer.start_as_current_span(
            f"store {operation}", context=parent, kind=SpanKind.CLIENT, attributes=_prefixed(attributes)
        ) as span:
            try:
                yield span
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__name__)
                raise

    async def append(
        self,
        thread: Thread,
        *,
        after: int,
        idempotency_key: str | None = None,
        request: str | None = None,
        owner: str | None = None,
        sync: bool = True,
    ) -> None:
        """`ThreadStore.append`, in a `store append` span (the events written, the status they leave)."""
        store = await self.inner()
        written = {"after": after, "events": len(thread) - after, "threadloom.thread.status": thread.status}
        keyed = idempotency_key is not None  # whether a key was given, never the key
        with self._span(store, "append", thread.id, **written, owner=owner, idempotency_key=keyed, sync=sync):
            await store.append(
                thread, after=after, idempotency_key=idempotency_key, request=request, owner=owner, sync=sync
            )

    async def load(self, thread_id: str) -> Thread:
        """`ThreadStore.load`, in a `store load` span (how many events it read)."""
        store = await self.inner()
        with self._span(store, "load", thread_id) as span:
            thread = await store.load(thread_id)
            span.set_attribute("threadloom.store.events", len(thread))
            return thread

    async def list(
        self,
        *,
        status: Status | None = None,
        agent: str | None = None,
        updated_after: datetime | None = None,
        wake_before: datetime | None = None,
        before: tuple[datetime, str] | None = None,
        newest_first: bool = False,
        limit: int = 100,
    ) -> list[ThreadSummary]:
        """`ThreadStore.list`, in a `store list` span (its filters, how many it found)."""
        store = await self.inner()
        with self._span(store, "list", status=status, agent=agent, limit=limit, newest_first=newest_first) as span:
            found = await store.list(
                status=status,
                agent=agent,
                updated_after=updated_after,
                wake_before=wake_before,
                before=before,
                newest_first=newest_first,
                limit=limit,
            )
            span.set_attribute("threadloom.store.results", len(found))
            return found

    async def counts(self) -> StoreCounts:
        """`ThreadStore.counts`, in a `store counts` span."""
        store = await self.inner()
        with self._span(store, "counts"):
            return await store.counts()

    async def find_key(
        self, idempotency_key: str, *, scope: str | None = None, request: str | None = None
    ) -> str | None:
        """`ThreadStore.find_key`, in a `store find_key` span (the scope, whether it was found; never the key)."""
        store = await self.inner()
        with self._span(store, "find_key", scope=scope) as span:
            found = await store.find_key(idempotency_key, scope=scope, request=request)
            span.set_attribute("threadloom.store.found", found is not None)
            return found

    async def claim(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[str]:
        """`ThreadStore.claim`, in a `store claim` span linked to each thread it leased."""
        store = await self.inner()
        with self._span(store, "claim", owner=owner, limit=limit, lease_seconds=lease_seconds) as span:
            claimed = await store.claim(owner, lease_seconds=lease_seconds, limit=limit, agents=agents)
            _claimed(span, claimed)
            return claimed

    async def claim_threads(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[Thread]:
        """`ThreadStore.claim_threads`, in a `store claim_threads` span linked to each thread it leased."""
        store = await self.inner()
        with self._span(store, "claim_threads", owner=owner, limit=limit, lease_seconds=lease_seconds) as span:
            claimed = await store.claim_threads(owner, lease_seconds=lease_seconds, limit=limit, agents=agents)
            _claimed(span, [thread.id for thread in claimed])
            return claimed

    async def set_aside(self, thread_id: str, reason: str) -> None:
        """`ThreadStore.set_aside`, in a `store set_aside` span."""
        store = await self.inner()
        with self._span(store, "set_aside", thread_id):
            await store.set_aside(thread_id, reason)

    async def renew(self, thread_id: str, owner: str, *, lease_seconds: float) -> bool:
        """`ThreadStore.renew`, in a `store renew` span (whether the lease was kept)."""
        store = await self.inner()
        with self._span(store, "renew", thread_id, owner=owner, lease_seconds=lease_seconds) as span:
            kept = await store.renew(thread_id, owner, lease_seconds=lease_seconds)
            span.set_attribute("threadloom.store.kept", kept)
            return kept

    async def release(self, thread_id: str, owner: str) -> None:
        """`ThreadStore.release`, in a `store release` span."""
        store = await self.inner()
        with self._span(store, "release", thread_id, owner=owner):
            await store.release(thread_id, owner)

    async def wait_for_work(self, seconds: float) -> None:
        """`ThreadStore.wait_for_work`, untraced: an idle worker's wait is no operation worth a span."""
        await (await self.inner()).wait_for_work(seconds)

    async def aclose(self) -> None:
        """Close the wrapped store; one given as a URL opens again on next use."""
        if self._store is not None:
            await self._store.aclose()
            if self._url is not None:
                self._store = None


def _prefixed(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Our own attributes under `threadloom.store.`; the conventions' (`db.`, `threadloom.`) as they are."""
    return {key if "." in key else f"threadloom.store.{key}": value for key, value in attributes.items()}


def _claimed(span: Span, thread_ids: list[str]) -> None:
    span.set_attribute("threadloom.store.claimed", len(thread_ids))
    for thread_id in thread_ids:
        span.add_link(thread_span_context(thread_id))
