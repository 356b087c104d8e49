"""Hostile input never runs away: bad rows, failing runs, shared keys, bad edits (issues 13 and 15).

Each test reproduces a fault of the code before it: a corrupted row stopped every worker, a run that
raised was retried in a tight loop, idempotency keys were global, edits were not checked.
"""

import asyncio
import logging
import sqlite3
from typing import Any, Literal

import pytest
from pydantic import JsonValue

from threadloom import Agent, Event, Runtime, Thread, ThreadNotFound, UserError, Worker, tool
from threadloom._limits import RunLimits
from threadloom.exceptions import IdempotencyKeyReused, NotStorable, ThreadDecodeError
from threadloom.models import ScriptedModel
from threadloom.store import SQLiteStore, ThreadStore
from threadloom.store.base import ThreadSummary

DONE = '{"intent": "done_for_now", "message": "ok"}'
FAST = RunLimits(attempts=3, backoff_seconds=0.01, max_backoff_seconds=0.05)

Corruption = Literal["data", "at", "schema_version", "metadata", "duplicate_id"]


async def corrupt(store: ThreadStore, thread_id: str, kind: Corruption) -> str | None:
    """Spoil one row of a stored thread as a disk, a bad migration or a hand edit would; the event it names."""
    if isinstance(store, SQLiteStore):
        prefix, mark = "", "?"
    else:
        prefix, mark = "threadloom_", "%s"
    rows = {
        "data": f"UPDATE {prefix}events SET data = '{{not json' WHERE thread_id = {mark} AND seq = 2",
        "at": f"UPDATE {prefix}events SET at = 'yesterday' WHERE thread_id = {mark} AND seq = 2",
        "schema_version": f"UPDATE {prefix}events SET schema_version = 99 WHERE thread_id = {mark} AND seq = 2",
        "metadata": f"UPDATE {prefix}threads SET metadata = '[1' WHERE thread_id = {mark}",
        "duplicate_id": f"UPDATE {prefix}events SET event_id = (SELECT event_id FROM {prefix}events"
        f" WHERE thread_id = {mark} AND seq = 1) WHERE thread_id = {mark} AND seq = 2",
    }
    sql = rows[kind]
    params = (thread_id, thread_id) if kind == "duplicate_id" else (thread_id,)
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as db:
            db.execute(sql, params)
            found = db.execute("SELECT event_id FROM events WHERE thread_id = ? AND seq = 2", (thread_id,)).fetchone()
    else:
        import psycopg

        from threadloom.store.postgres import PostgresStore

        assert isinstance(store, PostgresStore)
        async with await psycopg.AsyncConnection.connect(store.url, autocommit=True) as conn:
            await conn.execute(sql.encode(), params)
            cur = await conn.execute(
                "SELECT event_id FROM threadloom_events WHERE thread_id = %s AND seq = 2", (thread_id,)
            )
            found = await cur.fetchone()
    return None if kind == "metadata" else str(found[0]) if found else None


def kinds(store: ThreadStore) -> list[Corruption]:
    # PostgreSQL keeps `at` as a timestamptz: no row can hold a bad one.
    every: list[Corruption] = ["data", "at", "schema_version", "metadata", "duplicate_id"]
    return every if isinstance(store, SQLiteStore) else [k for k in every if k != "at"]


def three_events(agent: str = "a") -> Thread:
    thread = Thread.start("user_input", {"text": "hi"}, agent=agent)
    return thread.append(Event("note", {"n": 1})).append(Event("note", {"n": 2}))


@pytest.fixture(params=["sqlite", "postgres"])
async def durable(request: pytest.FixtureRequest, tmp_path: object) -> Any:
    """A SQLite or PostgreSQL store: the two whose rows can be spoiled."""
    if request.param == "sqlite":
        made: ThreadStore = SQLiteStore(f"{tmp_path}/threads.db")
    else:
        from threadloom.store.postgres import PostgresStore

        made = await PostgresStore.open(request.getfixturevalue("postgres_url"))
    yield made
    await made.aclose()


async def test_every_kind_of_bad_row_is_a_thread_decode_error_naming_the_thread_and_event(
    durable: ThreadStore,
) -> None:
    # Before: a raw JSONDecodeError / ValueError / UserError naming neither.
    for kind in kinds(durable):
        thread = three_events()
        await durable.append(thread, after=0)
        event_id = await corrupt(durable, thread.id, kind)
        with pytest.raises(ThreadDecodeError) as bad:
            await durable.load(thread.id)
        assert bad.value.thread_id == thread.id, kind
        assert bad.value.event_id == event_id, kind
        assert thread.id in str(bad.value)


async def test_a_claim_meeting_a_bad_row_releases_the_rest_and_names_the_thread(durable: ThreadStore) -> None:
    good = [three_events() for _ in range(3)]
    bad = three_events()
    await durable.append(bad, after=0)
    for thread in good:
        await durable.append(thread, after=0)
    await corrupt(durable, bad.id, "data")
    with pytest.raises(ThreadDecodeError) as raised:
        await durable.claim_threads("w1", lease_seconds=30, limit=10)
    assert raised.value.thread_id == bad.id
    await durable.set_aside(bad.id, str(raised.value))
    claimed = await durable.claim_threads("w2", lease_seconds=30, limit=10)  # the others were released
    assert sorted(t.id for t in claimed) == sorted(t.id for t in good)
    [summary] = [s for s in await durable.list() if s.thread_id == bad.id]
    assert summary.unreadable is not None and bad.id in summary.unreadable


async def test_a_worker_sets_an_unreadable_thread_aside_and_runs_the_others(
    durable: ThreadStore, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: Worker.run died on the first claim, and so did the next worker.
    runtime = Runtime(store=durable, agents=[Agent(name="a", model=ScriptedModel([DONE] * 10))])
    bad = three_events()
    await durable.append(bad, after=0)
    await corrupt(durable, bad.id, "data")
    healthy = [await runtime.launch("a", Event("user_input", {"i": i})) for i in range(3)]
    with caplog.at_level(logging.ERROR, logger="threadloom.worker"):
        worker = Worker(runtime, concurrency=2)
        assert await worker.run_until_idle() == 3
        assert await worker.run_until_idle() == 0  # set aside: not claimed again
    assert [(await runtime.get(t)).status for t in healthy] == ["done"] * 3
    assert sum(bad.id in r.getMessage() for r in caplog.records) == 1  # logged once


async def test_run_until_idle_goes_past_an_unreadable_thread_and_an_unknown_agent(
    durable: ThreadStore, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime(store=durable, agents=[Agent(name="a", model=ScriptedModel([DONE] * 10))])
    bad = three_events()
    await durable.append(bad, after=0)
    await corrupt(durable, bad.id, "metadata")
    stranger = await Runtime(store=durable).launch("typo", Event("user_input", "x"))
    healthy = await runtime.launch("a", Event("user_input", "y"))
    with caplog.at_level(logging.ERROR, logger="threadloom.runtime"):
        assert await runtime.run_until_idle() == 1
    assert (await runtime.get(healthy)).status == "done"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert bad.id in logged and stranger in logged and "typo" in logged


def raising(_: object) -> str:
    raise RuntimeError("a bug in the model client")


async def test_a_run_that_raises_is_retried_with_backoff_then_fails(store: ThreadStore) -> None:
    # Before: the worker re-claimed the thread at once, again and again.
    calls: list[int] = []

    def counted(messages: object) -> str:
        calls.append(1)
        return raising(messages)

    runtime = Runtime(store=store, agents=[Agent(name="a", model=ScriptedModel([counted] * 100))], limits=FAST)
    thread_id = await runtime.launch("a", Event("user_input", "x"))
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(runtime, poll_seconds=0.01).run(stop))
    for _ in range(300):
        if (await runtime.get(thread_id)).status != "ready":
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    thread = await runtime.get(thread_id)
    assert thread.status == "failed"
    errors = [e.data for e in thread.events if e.type == "run_error"]
    assert [d["attempt"] for d in errors if isinstance(d, dict)] == [1, 2, 3]
    assert all(isinstance(d, dict) and d["error_type"] == "RuntimeError" for d in errors)
    assert len(calls) == 3  # one model call per attempt, no more
    reason = thread.events[-1].data
    assert isinstance(reason, dict) and "RuntimeError" in str(reason["reason"])


@tool
def ping() -> str:
    """Ping."""
    return "pong"


async def test_the_circuit_breaker_bounds_tool_runs_per_minute(store: ThreadStore) -> None:
    ping_forever = '{"intent": "ping"}'
    agent = Agent(name="a", model=ScriptedModel([ping_forever] * 100), tools=[ping], max_steps=1000)
    limits = RunLimits(tool_runs_per_minute=5, model_calls_per_minute=1000)
    runtime = Runtime(store=store, agents=[agent], limits=limits)
    thread_id = await runtime.launch("a", Event("user_input", "x"))
    await Worker(runtime).run_until_idle()
    await Worker(runtime).run_until_idle()  # the breaker is open: not claimed again this minute
    thread = await runtime.get(thread_id)
    assert [e.type for e in thread.events].count("tool_started") == 5
    last = thread.events[-1]
    assert last.type == "run_error" and isinstance(last.data, dict) and last.data["error_type"] == "CircuitOpen"
    [summary] = await runtime.list()
    assert summary.retry_at is not None


async def test_the_circuit_breaker_bounds_model_calls_per_minute(store: ThreadStore) -> None:
    garbage = ScriptedModel(["not json"] * 100)
    agent = Agent(name="a", model=garbage, max_consecutive_errors=1000)
    runtime = Runtime(store=store, agents=[agent], limits=RunLimits(model_calls_per_minute=4))
    thread_id = await runtime.launch("a", Event("user_input", "x"))
    await runtime.run_until_idle()
    thread = await runtime.get(thread_id)
    assert [e.type for e in thread.events].count("error") == 4


@tool(policy="approval")
def refund(order_id: str, amount_cents: int) -> str:
    """Refund an order."""
    return f"refunded {amount_cents}"


def refunder() -> Agent:
    call = '{"intent": "refund", "order_id": "o1", "amount_cents": 4599}'
    return Agent(name="refunder", model=ScriptedModel([call, call, DONE, DONE]), tools=[refund])


async def waiting_threads(runtime: Runtime, count: int) -> list[Thread]:
    ids = [await runtime.launch("refunder", Event("user_input", {"i": i})) for i in range(count)]
    await runtime.run_until_idle()
    return [await runtime.get(t) for t in ids]


async def test_idempotency_keys_belong_to_their_thread(store: ThreadStore) -> None:
    # Before: approve(t2, key) after the same key on t1 returned normally and t2 stayed waiting.
    runtime = Runtime(store=store, agents=[refunder()])
    t1, t2 = await waiting_threads(runtime, 2)
    assert t1.pending is not None and t2.pending is not None
    await runtime.approve(t1.id, t1.pending.id, idempotency_key="approve-button")
    approved = await runtime.approve(t2.id, t2.pending.id, idempotency_key="approve-button")
    assert approved.status == "ready"
    again = await runtime.approve(t2.id, t2.pending.id, idempotency_key="approve-button")  # a double click
    assert len(again) == len(approved)
    with pytest.raises(IdempotencyKeyReused):  # the same key for another request
        await runtime.reject(t2.id, t2.pending.id, "no", idempotency_key="approve-button")


async def test_a_reused_key_with_another_event_is_refused_not_dropped(store: ThreadStore) -> None:
    # Before: send_event with a reused key dropped the event without a word.
    runtime = Runtime(store=store)
    thread_id = await runtime.launch("a", Event("user_input", "x"))
    await runtime.send_event(thread_id, Event("webhook", {"n": 1}), idempotency_key="delivery")
    same = await runtime.send_event(thread_id, Event("webhook", {"n": 1}), idempotency_key="delivery")
    assert len(same) == 2
    with pytest.raises(IdempotencyKeyReused, match="delivery"):
        await runtime.send_event(thread_id, Event("webhook", {"n": 2}), idempotency_key="delivery")
    assert len(await runtime.get(thread_id)) == 2


async def test_approval_edits_are_checked_against_the_tool(store: ThreadStore) -> None:
    # Before: `amount=100` (a typo) and `amount_cents="lots"` were accepted and recorded.
    runtime = Runtime(store=store, agents=[refunder()])
    [thread] = await waiting_threads(runtime, 1)
    assert thread.pending is not None
    with pytest.raises(UserError, match=r"'refund'.*'amount'.*amount_cents: int"):
        await runtime.approve(thread.id, thread.pending.id, {"amount": 100})
    with pytest.raises(UserError, match=r"'refund'.*amount_cents.*order_id: str"):
        await runtime.approve(thread.id, thread.pending.id, {"amount_cents": "lots"})
    assert len(await runtime.get(thread.id)) == len(thread)  # nothing appended
    approved = await runtime.approve(thread.id, thread.pending.id, {"amount_cents": 100})
    assert approved.status == "ready"


async def test_a_multiple_choice_answer_must_be_a_choice(store: ThreadStore) -> None:
    runtime = Runtime(store=store)
    question: dict[str, JsonValue] = {"question": "which?", "format": "multiple_choice", "choices": ["retry", "abort"]}
    thread_id = await runtime.launch("a", Event("user_input", "x"))
    thread = await runtime.send_event(thread_id, Event("request_human_input", question))
    assert thread.pending is not None
    with pytest.raises(UserError, match="'retry', 'abort'"):
        await runtime.respond(thread_id, thread.pending.id, "maybe")
    assert len(await runtime.get(thread_id)) == len(thread)
    assert (await runtime.respond(thread_id, thread.pending.id, "retry")).status == "ready"


async def test_a_value_the_store_cannot_encode_is_not_storable_naming_the_thread(durable: ThreadStore) -> None:
    from threadloom.events import restored_event

    thread = three_events()
    await durable.append(thread, after=0)
    event = Event("note", {"n": 1})
    deep: JsonValue = []
    for _ in range(100_000):
        deep = [deep]
    for value in (10**5000, "ok\ud800", deep):  # made past Event()'s checks, as a store's caller might
        poisoned = thread.append(restored_event("note", {"value": value}, event.id, event.at))
        with pytest.raises(NotStorable) as refused:
            await durable.append(poisoned, after=3)
        assert refused.value.thread_id == thread.id
    assert len(await durable.load(thread.id)) == 3


@pytest.mark.parametrize("bad", ["k\x00", "k\udc00", "k" * 10_000])
async def test_a_key_or_agent_name_no_store_can_hold_is_a_user_error_on_every_store(
    store: ThreadStore, bad: str
) -> None:
    runtime = Runtime(store=store)
    thread_id = await runtime.launch("a", Event("user_input", "x"))
    with pytest.raises(UserError, match="idempotency key"):
        await runtime.launch("a", Event("user_input", "x"), idempotency_key=bad)
    with pytest.raises(UserError, match="agent name"):
        await runtime.launch(bad, Event("user_input", "x"))
    with pytest.raises(UserError, match="idempotency key"):
        await runtime.send_event(thread_id, Event("slack_message", {"text": "x"}), idempotency_key=bad)
    with pytest.raises(UserError, match="idempotency key"):
        await runtime.cancel(thread_id, idempotency_key=bad)
    with pytest.raises(ThreadNotFound):
        await runtime.get(bad)
    assert [s.thread_id for s in await runtime.list()] == [thread_id] and len(await runtime.get(thread_id)) == 1


def _summary_fields() -> set[str]:
    return set(ThreadSummary.__dataclass_fields__)


def test_a_summary_says_when_a_thread_may_run_and_whether_it_is_readable() -> None:
    assert {"retry_at", "unreadable"} <= _summary_fields()


@tool
def fetch_page() -> str:
    """Fetch a page whose text holds a lone surrogate."""
    return "ok\ud800"


@tool
def explode() -> str:
    """A tool with a bug."""
    raise ZeroDivisionError("always")


def chaos_agents() -> list[Agent]:
    def model(*outputs: object) -> ScriptedModel:
        return ScriptedModel(list(outputs) * 2000)  # pyright: ignore[reportArgumentType] - texts and callables

    return [
        Agent(name="healthy", model=model(DONE)),
        Agent(name="fetcher", model=model('{"intent": "fetch_page"}'), tools=[fetch_page]),
        Agent(name="exploder", model=model('{"intent": "explode"}'), tools=[explode]),
        Agent(name="garbage", model=model("<<garbage>>")),
        Agent(name="raiser", model=model(raising)),
    ]


async def test_chaos_poisoned_threads_stop_with_a_reason_and_the_healthy_all_finish(
    durable: ThreadStore, caplog: pytest.LogCaptureFixture
) -> None:
    limits = RunLimits(attempts=3, backoff_seconds=0.02, max_backoff_seconds=0.1)
    runtime = Runtime(store=durable, agents=chaos_agents(), limits=limits)
    healthy = [await runtime.launch("healthy", Event("user_input", {"i": i})) for i in range(100)]
    poisoned = {name: await runtime.launch(name, Event("user_input", name)) for name in ("fetcher", "exploder")}
    poisoned |= {name: await runtime.launch(name, Event("user_input", name)) for name in ("garbage", "raiser")}
    poisoned["unknown agent"] = await Runtime(store=durable).launch("no_such_agent", Event("user_input", "x"))
    corrupted = three_events("healthy")
    await durable.append(corrupted, after=0)
    await corrupt(durable, corrupted.id, "data")
    stop = asyncio.Event()
    workers = [Worker(runtime, concurrency=4, poll_seconds=0.02) for _ in range(3)]
    with caplog.at_level(logging.WARNING):
        tasks = [asyncio.create_task(w.run(stop)) for w in workers]
        for _ in range(1200):
            summaries = {s.thread_id: s for s in await durable.list(limit=1000)}
            settled = all(summaries[t].status == "done" for t in healthy) and all(
                summaries[t].status != "ready" for n, t in poisoned.items() if n != "unknown agent"
            )
            if settled and summaries[corrupted.id].unreadable is not None:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
    summaries = {s.thread_id: s for s in await durable.list(limit=1000)}
    assert [summaries[t].status for t in healthy] == ["done"] * 100
    assert summaries[corrupted.id].unreadable is not None
    stopped = {name: await runtime.get(t) for name, t in poisoned.items()}
    assert stopped["unknown agent"].status == "ready" and len(stopped["unknown agent"]) == 1  # left alone
    assert stopped["fetcher"].status == "waiting_human"  # the result could not be kept: a person decides
    assert stopped["exploder"].status == "waiting_human"  # the tool's errors reached the limit
    assert stopped["garbage"].status == "waiting_human"  # the model's errors reached the limit
    assert stopped["raiser"].status == "failed"  # the run raised `attempts` times
    for name, thread in stopped.items():
        if name == "unknown agent":
            continue
        assert thread.pending is not None or thread.status == "failed", name
        reason = thread.events[-1].data
        assert isinstance(reason, dict) and (reason.get("question") or reason.get("reason")), name
        tool_runs = sum(e.type == "tool_started" for e in thread.events)
        model_calls = sum(
            e.type in {"tool_call", "done_for_now"} or (isinstance(e.data, dict) and e.data.get("source") == "model")
            for e in thread.events
        )
        assert tool_runs <= limits.tool_runs_per_minute and model_calls <= limits.model_calls_per_minute, name
        assert tool_runs <= 3 and model_calls <= 4, name  # stopped well within the bound


async def test_runtime_entry_points_refuse_unstorable_values_and_write_nothing(store: ThreadStore) -> None:
    runtime = Runtime(store=store, agents=[refunder()])
    with pytest.raises(UserError):
        await runtime.launch("refunder", Event("user_input", "x"), metadata={"note": "bad\ud800"})
    assert await runtime.list() == []
    [thread] = await waiting_threads(runtime, 1)
    assert thread.pending is not None
    with pytest.raises(UserError):
        await runtime.approve(thread.id, thread.pending.id, {"order_id": "o\ud800"})
    with pytest.raises(UserError):
        await runtime.send_event(thread.id, Event("webhook", {"n": 10**5000}))
    assert len(await runtime.get(thread.id)) == len(thread)
