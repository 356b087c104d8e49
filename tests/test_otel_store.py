"""Store-operation spans (`TracedStore`), checked with the SDK's in-memory exporter on every kind of store:
names and attributes, errors, where each span hangs (the run's span, the thread's trace), claims linked to
the threads they lease."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from threadloom import Agent, Event, Runtime, Thread, ThreadNotFound, VersionConflict, Worker
from threadloom.models import ScriptedModel
from threadloom.otel import TracedStore, instrument, thread_span_context
from threadloom.server import open_tables, tables_url
from threadloom.server.tables.sqlite import SQLiteTables
from threadloom.store import SQLiteStore, ThreadStore

SYSTEMS = {"MemoryStore": "memory", "SQLiteStore": "sqlite", "PostgresStore": "postgresql"}


def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    made = TracerProvider()
    made.add_span_processor(SimpleSpanProcessor(exporter))
    return made, exporter


def ids(span: ReadableSpan) -> SpanContext:
    assert span.context is not None
    return span.context


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def in_the_threads_trace(span: ReadableSpan, thread_id: str) -> bool:
    """The span descends straight from the thread's own span context, as a run outside any span does."""
    root = thread_span_context(thread_id)
    return ids(span).trace_id == root.trace_id and span.parent is not None and span.parent.span_id == root.span_id


async def test_each_operation_is_a_client_span_named_after_it(store: ThreadStore) -> None:
    made, exporter = provider()
    traced = TracedStore(store, tracer_provider=made)
    thread = Thread.start("user_input", {"text": "hi"}, agent="greeter")
    await traced.append(thread, after=0, idempotency_key="k-1", request="r")
    assert await traced.find_key("k-1", scope="launch:greeter", request="r") == thread.id
    assert (await traced.load(thread.id)).id == thread.id
    assert [s.thread_id for s in await traced.list(status="ready", limit=5)] == [thread.id]
    claimed = await traced.claim_threads("w1", lease_seconds=30, limit=4)
    assert [t.id for t in claimed] == [thread.id]
    assert await traced.renew(thread.id, "w1", lease_seconds=30)
    await traced.release(thread.id, "w1")
    assert await traced.claim("w2", lease_seconds=30, limit=4) == [thread.id]
    await traced.set_aside(thread.id, "a test")
    assert (await traced.counts()).threads["ready"] == 1
    await traced.wait_for_work(0)  # an idle worker's wait: no span

    spans = exporter.get_finished_spans()
    operations = [
        "append",
        "find_key",
        "load",
        "list",
        "claim_threads",
        "renew",
        "release",
        "claim",
        "set_aside",
        "counts",
    ]
    assert [s.name for s in spans] == [f"store {op}" for op in operations]
    system = SYSTEMS[type(store).__name__]
    for span, operation in zip(spans, operations, strict=True):
        assert span.kind == SpanKind.CLIENT and span.status.status_code == StatusCode.UNSET
        attributes = dict(span.attributes or {})
        assert attributes["db.system.name"] == system and attributes["db.operation.name"] == operation
        assert "k-1" not in attributes.values()  # an idempotency key is never an attribute
    append, find_key, load, listed, claim_threads, renew, release, claim, set_aside, counts = spans
    assert dict(append.attributes or {}) == {
        "db.system.name": system,
        "db.operation.name": "append",
        "threadloom.thread.id": thread.id,
        "threadloom.thread.status": "ready",
        "threadloom.store.after": 0,
        "threadloom.store.events": 1,
        "threadloom.store.idempotency_key": True,
        "threadloom.store.sync": True,
    }
    assert (find_key.attributes or {})["threadloom.store.found"] is True
    assert (load.attributes or {})["threadloom.store.events"] == 1
    assert (listed.attributes or {})["threadloom.store.status"] == "ready"
    assert (listed.attributes or {})["threadloom.store.results"] == 1
    assert (renew.attributes or {})["threadloom.store.kept"] is True
    assert (release.attributes or {})["threadloom.store.owner"] == "w1"
    # Outside any span, an operation on a thread lands in the thread's trace; a claim, on no one
    # thread, starts a trace of its own and links to each thread it leased.
    for span in (append, load, renew, release, set_aside):
        assert in_the_threads_trace(span, thread.id), span.name
    for span in (claim_threads, claim):
        assert span.parent is None and (span.attributes or {})["threadloom.store.claimed"] == 1
        assert [link.context for link in span.links] == [thread_span_context(thread.id)]
    assert find_key.parent is None and listed.parent is None and counts.parent is None


async def test_a_failed_operation_is_an_error_span_naming_the_exception(store: ThreadStore) -> None:
    made, exporter = provider()
    traced = TracedStore(store, tracer_provider=made)
    with pytest.raises(ThreadNotFound):
        await traced.load("th_missing")
    thread = Thread.start("user_input", {"text": "hi"})
    await traced.append(thread, after=0)
    with pytest.raises(VersionConflict):
        await traced.append(thread.append(Event("note", {"text": "late"})), after=0)
    missing, _, conflict = exporter.get_finished_spans()
    for span, error in ((missing, "ThreadNotFound"), (conflict, "VersionConflict")):
        assert span.status.status_code == StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == error
        assert [e.name for e in span.events] == ["exception"]
    assert in_the_threads_trace(missing, "th_missing")


DONE = '{"intent": "done_for_now", "message": "greeted"}'


async def test_a_workers_saves_hang_under_its_run_and_its_claim_links_the_thread(store: ThreadStore) -> None:
    made, exporter = provider()
    agent = Agent(name="greeter", model=ScriptedModel([DONE]))
    traced = TracedStore(store, tracer_provider=made)  # closed by the fixture, not the runtime
    runtime = Runtime(store=traced, agents=[instrument(agent, tracer_provider=made)])
    thread_id = await runtime.launch("greeter", Event("user_input", {"text": "hello"}))
    assert await Worker(runtime, owner="w1").run_until_idle() == 1
    spans = exporter.get_finished_spans()
    run = named(spans, "invoke_agent greeter")[0]
    assert in_the_threads_trace(run, thread_id)
    launch, save = named(spans, "store append")
    assert in_the_threads_trace(launch, thread_id)  # before any run: the thread's trace
    assert save.parent is not None and save.parent.span_id == ids(run).span_id  # the run's save: its child
    assert (save.attributes or {})["threadloom.store.owner"] == "w1"
    assert (save.attributes or {})["threadloom.thread.status"] == "done"
    claim = next(s for s in named(spans, "store claim_threads") if (s.attributes or {})["threadloom.store.claimed"])
    assert [link.context.trace_id for link in claim.links] == [ids(run).trace_id]
    (release,) = named(spans, "store release")
    assert in_the_threads_trace(release, thread_id) and ids(release).trace_id == ids(run).trace_id


async def test_inside_the_callers_span_an_operation_is_its_child(tmp_path: Path) -> None:
    made, exporter = provider()
    traced = TracedStore(f"sqlite:///{tmp_path}/t.db", tracer_provider=made)
    thread = Thread.start("user_input", {"text": "hi"})
    with made.get_tracer("test").start_as_current_span("http request") as outer:
        await traced.append(thread, after=0)
    (append,) = named(exporter.get_finished_spans(), "store append")
    assert append.parent is not None and append.parent.span_id == outer.get_span_context().span_id
    # Given a URL, the store opens on first use and again after it is closed.
    await traced.aclose()
    assert (await traced.load(thread.id)).id == thread.id
    await traced.aclose()


async def test_the_servers_tables_open_beside_a_traced_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "threads.db")
    await store.append(Thread.start("user_input", {"text": "hi"}), after=0)
    for traced in (TracedStore(store), TracedStore(f"sqlite:///{tmp_path}/threads.db")):
        # Before: UserError, "not a TracedStore", so `threadloom serve` refused a traced store.
        assert tables_url(traced) == f"sqlite:///{tmp_path}/threads.db"
        tables = await open_tables(traced)
        try:
            assert isinstance(tables, SQLiteTables) and Path(tables.path) == tmp_path / "threads.db"
            await tables.add_setting("greeting", "hello")
        finally:
            await tables.aclose()
        await traced.aclose()
    assert tables_url(TracedStore(TracedStore("memory://"))) == "memory://"
    with closing(sqlite3.connect(tmp_path / "threads.db")) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"threads", "threadloom_settings"} <= names  # one file holds both
