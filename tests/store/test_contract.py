"""The ThreadStore contract, the same for every backend."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom import AlreadyDelivered, Event, LeaseLost, Thread, ThreadNotFound, UserError, VersionConflict
from threadloom.exceptions import IdempotencyKeyReused
from threadloom.store import ThreadStore


def deploy_thread() -> Thread:
    thread = Thread.start("slack_message", {"text": "deploy", "n": 1.5, "big": 2**70}, agent="deploy_bot")
    return thread.append(
        Event("tool_call", {"intent": "deploy_backend", "arguments": {"tag": "v1"}, "policy": "approval"})
    )


async def test_append_creates_and_load_reads_back_exactly(store: ThreadStore) -> None:
    thread = deploy_thread()
    await store.append(thread, after=0)
    loaded = await store.load(thread.id)
    assert loaded == thread and loaded.to_json() == thread.to_json()
    assert loaded.status == "waiting_approval" and loaded.pending == thread.pending


async def test_append_writes_only_the_new_events(store: ThreadStore) -> None:
    thread = deploy_thread()
    await store.append(thread, after=0)
    assert thread.pending is not None
    approved = thread.approve(thread.pending.id)
    await store.append(approved, after=len(thread))
    assert await store.load(thread.id) == approved
    [summary] = await store.list()
    assert (summary.thread_id, summary.status, summary.events, summary.agent) == (thread.id, "ready", 3, "deploy_bot")


async def test_a_stale_append_conflicts_and_writes_nothing(store: ThreadStore) -> None:
    thread = deploy_thread()
    await store.append(thread, after=0)
    assert thread.pending is not None
    first = thread.approve(thread.pending.id)
    second = thread.reject(thread.pending.id, "no")
    await store.append(first, after=2)
    with pytest.raises(VersionConflict) as info:
        await store.append(second, after=2)
    assert (info.value.expected, info.value.actual, info.value.thread_id) == (2, 3, thread.id)
    assert await store.load(thread.id) == first


async def test_creating_twice_conflicts(store: ThreadStore) -> None:
    thread = deploy_thread()
    await store.append(thread, after=0)
    with pytest.raises(VersionConflict):
        await store.append(thread, after=0)


async def test_missing_threads(store: ThreadStore) -> None:
    with pytest.raises(ThreadNotFound, match="no thread 'th_nope'"):
        await store.load("th_nope")
    with pytest.raises(ThreadNotFound):
        await store.append(deploy_thread(), after=1)
    with pytest.raises(UserError, match="outside thread"):
        await store.append(deploy_thread(), after=5)


async def test_an_idempotency_key_has_one_effect_in_its_thread(store: ThreadStore) -> None:
    thread = Thread.start("webhook", {"id": 1}).append(Event("webhook", {"id": 2}))
    await store.append(thread, after=0)
    again = thread.append(Event("webhook", {"id": 3}))
    await store.append(again, after=2, idempotency_key="delivery-1", request="r1")
    with pytest.raises(AlreadyDelivered) as info:  # the same delivery again: nothing written
        await store.append(
            again.append(Event("webhook", {"id": 3})), after=3, idempotency_key="delivery-1", request="r1"
        )
    assert info.value.thread_id == thread.id
    with pytest.raises(IdempotencyKeyReused, match="delivery-1"):  # the same key, another request
        await store.append(
            again.append(Event("webhook", {"id": 4})), after=3, idempotency_key="delivery-1", request="r2"
        )
    assert len(await store.load(thread.id)) == 3
    assert await store.find_key("delivery-1") == thread.id
    assert await store.find_key("delivery-1", scope=f"thread:{thread.id}", request="r1") == thread.id
    with pytest.raises(IdempotencyKeyReused):
        await store.find_key("delivery-1", scope=f"thread:{thread.id}", request="r2")
    assert await store.find_key("delivery-2") is None
    # Keys belong to their thread: the same key on another thread is another delivery.
    other = Thread.start("webhook", {"id": 1})
    await store.append(other, after=0)
    await store.append(other.append(Event("webhook", {"id": 3})), after=1, idempotency_key="delivery-1", request="r2")
    assert len(await store.load(other.id)) == 2
    assert await store.find_key("delivery-1", scope=f"thread:{other.id}") == other.id


async def test_a_launch_key_belongs_to_its_agent(store: ThreadStore) -> None:
    first = Thread.start("user_input", "a", agent="x")
    await store.append(first, after=0, idempotency_key="launch-1", request="r")
    with pytest.raises(AlreadyDelivered) as info:
        await store.append(Thread.start("user_input", "a", agent="x"), after=0, idempotency_key="launch-1", request="r")
    assert info.value.thread_id == first.id
    other = Thread.start("user_input", "a", agent="y")  # another agent: its own keys
    await store.append(other, after=0, idempotency_key="launch-1", request="r")
    assert await store.find_key("launch-1", scope="launch:x") == first.id
    assert await store.find_key("launch-1", scope="launch:y") == other.id


async def test_list_filters_and_orders(store: ThreadStore) -> None:
    a = Thread.start("user_input", "a", agent="x")
    b = Thread.start("user_input", "b", agent="y").append(Event("done_for_now", {"message": "ok"}))
    await store.append(a, after=0)
    middle = datetime.now(UTC)
    await store.append(b, after=0)
    assert [s.thread_id for s in await store.list()] == [a.id, b.id]
    assert [s.thread_id for s in await store.list(status="done")] == [b.id]
    assert [s.thread_id for s in await store.list(agent="x")] == [a.id]
    assert [s.thread_id for s in await store.list(updated_after=middle)] == [b.id]
    assert len(await store.list(limit=1)) == 1
    forked = b.fork(at=b.events[0].id)
    await store.append(forked, after=0)
    [summary] = await store.list(agent=None, status="ready", updated_after=middle)
    assert summary.parent_id == b.id


async def test_pages_newest_first_by_cursor_see_every_thread_once(store: ThreadStore) -> None:
    threads = [Thread.start("user_input", str(i), agent="x" if i % 2 else "y") for i in range(7)]
    for thread in threads:
        await store.append(thread, after=0)
    newest = [s.thread_id for s in await store.list(newest_first=True)]
    assert newest == [s.thread_id for s in reversed(await store.list())]
    assert set(newest) == {t.id for t in threads}
    seen: list[str] = []
    cursor: tuple[datetime, str] | None = None
    while page := await store.list(newest_first=True, before=cursor, limit=3):
        seen += [s.thread_id for s in page]
        cursor = (page[-1].updated_at, page[-1].thread_id)
    assert seen == newest
    x_only = [s.thread_id for s in await store.list(agent="x", newest_first=True, limit=2)]
    assert x_only == [t for t in newest if t in {th.id for th in threads[1::2]}][:2]


async def test_concurrent_appends_from_one_version_let_exactly_one_win(store: ThreadStore) -> None:
    thread = Thread.start("user_input", "go")
    await store.append(thread, after=0)
    writers = [thread.append(Event("note", {"writer": i})) for i in range(8)]
    results = await asyncio.gather(*(store.append(w, after=1) for w in writers), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, VersionConflict) for r in results if r is not None)
    assert len(await store.load(thread.id)) == 2


chunks = st.lists(
    st.lists(
        st.builds(
            Event,
            st.sampled_from(["user_input", "note", "tool_response", "slack_message"]),
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers()
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(),
                lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                max_leaves=6,
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks)
async def test_any_thread_appended_in_chunks_reads_back_exactly(store: ThreadStore, parts: list[list[Event]]) -> None:
    thread = Thread(metadata={"agent": "a", "note": [1, "x"]})
    written = 0
    for part in parts:
        thread = thread.extend(part)
        await store.append(thread, after=written)
        written = len(thread)
    loaded = await store.load(thread.id)
    assert loaded.to_json() == thread.to_json() and loaded.state == thread.state


def _accepted(data: JsonValue) -> Event | None:
    try:
        return Event("note", data)
    except UserError:
        return None


def _near(bits: int, sign: int) -> int:
    return sign * (2**bits - 1)


_edges = st.one_of(
    st.integers(min_value=-(2**14_001), max_value=2**14_001),  # near the 14,000-bit bound, both sides
    st.builds(_near, st.sampled_from([63, 64, 13_999, 14_000, 14_001]), st.sampled_from([1, -1])),
    st.text(alphabet=st.sampled_from(["\x00", "a", "\u2028", "\ufffd", "\U0001f600", "\\", '"', "\n"]), max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(),  # NaN and Infinity: Event() refuses them, so they never reach a store
    st.text(),
)
_stored = (
    st.recursive(
        _edges,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4) | st.just("\x00k"), inner, max_size=3)
        ),
        max_leaves=8,
    )
    .map(_accepted)
    .filter(lambda event: event is not None)
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_stored, min_size=1, max_size=3))
async def test_whatever_event_accepts_every_store_loads_back_equal(
    store: ThreadStore, events: list[Event | None]
) -> None:
    # NUL characters (PostgreSQL text refuses them raw; JSON escapes them) and ints near the bound.
    thread = Thread([e for e in events if e is not None], metadata={"agent": "a", "\x00": "\x00"})
    await store.append(thread, after=0)
    loaded = await store.load(thread.id)
    assert [(e.id, e.type, e.data, e.at) for e in loaded.events] == [
        (e.id, e.type, e.data, e.at) for e in thread.events
    ]
    assert loaded.to_json() == thread.to_json() and dict(loaded.metadata) == dict(thread.metadata)


async def test_leases_are_exclusive_renewable_and_expire(store: ThreadStore) -> None:
    threads = [Thread.start("user_input", str(i)) for i in range(3)]
    for t in threads:
        await store.append(t, after=0)
    done = Thread.start("user_input", "x").append(Event("done_for_now", {"message": "m"}))
    await store.append(done, after=0)
    first = await store.claim("w1", lease_seconds=30, limit=2)
    second = await store.claim("w2", lease_seconds=30, limit=5)
    assert sorted(first + second) == sorted(t.id for t in threads) and not set(first) & set(second)
    assert await store.claim("w3", lease_seconds=30, limit=5) == []
    assert await store.renew(first[0], "w1", lease_seconds=30)
    assert not await store.renew(first[0], "w2", lease_seconds=30)
    await store.release(first[0], "w2")  # not w2's: nothing happens
    assert await store.claim("w3", lease_seconds=30, limit=5) == []
    await store.release(first[0], "w1")
    assert await store.claim("w3", lease_seconds=30, limit=5) == [first[0]]
    expiring = await store.claim("w4", lease_seconds=0.0, limit=5)  # nothing left to claim
    assert expiring == []
    await store.release(first[0], "w3")
    short = await store.claim("w5", lease_seconds=0.05, limit=1)
    await asyncio.sleep(0.1)
    assert not await store.renew(short[0], "w5", lease_seconds=30)  # expired
    assert await store.claim("w6", lease_seconds=30, limit=1) == short


async def test_concurrent_claims_never_share_a_thread(store: ThreadStore) -> None:
    for i in range(20):
        await store.append(Thread.start("user_input", str(i)), after=0)
    batches = await asyncio.gather(*(store.claim(f"w{i}", lease_seconds=30, limit=3) for i in range(10)))
    claimed = [t for batch in batches for t in batch]
    assert len(claimed) == len(set(claimed)) == 20


async def test_claim_threads_leases_and_reads_the_threads(store: ThreadStore) -> None:
    long = deploy_thread()
    assert long.pending is not None
    long = long.approve(long.pending.id).extend(Event("note", {"i": i}) for i in range(30))
    threads = [long, Thread.start("user_input", "short", agent="a")]
    for t in threads:
        await store.append(t, after=0)
    await store.append(Thread.start("user_input", "x").append(Event("done_for_now", {"message": "m"})), after=0)
    claimed = await store.claim_threads("w1", lease_seconds=30, limit=5)
    assert sorted(claimed, key=lambda t: t.id) == sorted(threads, key=lambda t: t.id)
    for t in claimed:
        assert t.to_json() == (await store.load(t.id)).to_json()
    assert await store.claim_threads("w2", lease_seconds=30, limit=5) == []  # leased to w1
    assert not await store.renew(long.id, "w2", lease_seconds=30) and await store.renew(long.id, "w1", lease_seconds=30)
    await store.release(long.id, "w1")
    assert await store.claim_threads("w2", lease_seconds=30, limit=5) == [long]


async def test_a_released_lease_neither_renews_nor_passes_the_fencing_check(store: ThreadStore) -> None:
    thread = Thread.start("user_input", "go")
    await store.append(thread, after=0)
    assert await store.claim("w1", lease_seconds=30, limit=1) == [thread.id]
    stopped = thread.append(Event("done_for_now", {"message": "m"}))
    await store.append(stopped, after=1, owner="w1")  # w1's run stops the thread, then releases it
    await store.release(thread.id, "w1")
    assert not await store.renew(thread.id, "w1", lease_seconds=30)
    again = stopped.append(Event("user_input", {"text": "more"}))
    await store.append(again, after=2)
    assert not await store.renew(thread.id, "w1", lease_seconds=30)
    with pytest.raises(LeaseLost):
        await store.append(again.append(Event("note", {"n": 1})), after=3, owner="w1")
    assert len(await store.load(thread.id)) == 3


async def test_a_thread_a_worker_stopped_is_claimable_once_ready_again(store: ThreadStore) -> None:
    thread = Thread.start("user_input", "go")
    await store.append(thread, after=0)
    assert await store.claim("w1", lease_seconds=30, limit=1) == [thread.id]
    stopped = thread.append(Event("done_for_now", {"message": "m"}))
    await store.append(stopped, after=1, owner="w1")
    # Still w1's until it releases: a renewal racing the end of w1's run is no lost lease.
    assert await store.renew(thread.id, "w1", lease_seconds=30)
    await store.release(thread.id, "w1")
    assert await store.claim("w2", lease_seconds=30, limit=1) == []  # done: nothing to run
    await store.wait_for_work(0)
    waiter = asyncio.create_task(store.wait_for_work(3600))
    await asyncio.sleep(0)
    again = stopped.append(Event("user_input", {"text": "more"}))
    await store.append(again, after=2)  # a person speaks
    await asyncio.wait_for(waiter, timeout=60)
    assert await store.claim("w2", lease_seconds=30, limit=1) == [thread.id]
    with pytest.raises(LeaseLost):
        await store.append(again.append(Event("note", {"by": "w1 again"})), after=3, owner="w1")


async def test_concurrent_claim_threads_never_share_a_thread(store: ThreadStore) -> None:
    for i in range(20):
        await store.append(Thread.start("user_input", str(i)), after=0)
    batches = await asyncio.gather(*(store.claim_threads(f"w{i}", lease_seconds=30, limit=3) for i in range(10)))
    claimed = [t.id for batch in batches for t in batch]
    assert len(claimed) == len(set(claimed)) == 20


async def test_list_finds_due_sleepers(store: ThreadStore) -> None:
    def sleeper(until: datetime) -> Thread:
        return Thread.start("user_input", "later").append(
            Event("wait_until", {"until": until.isoformat(), "reason": "r"})
        )

    now = datetime.now(UTC)
    due, later = sleeper(now - timedelta(minutes=1)), sleeper(now + timedelta(hours=1))
    for thread in (later, due, Thread.start("user_input", "awake")):
        await store.append(thread, after=0)
    assert [s.thread_id for s in await store.list(wake_before=now)] == [due.id]
    assert [s.thread_id for s in await store.list(status="sleeping", wake_before=now + timedelta(days=1))] == [
        later.id,
        due.id,
    ]


@pytest.mark.parametrize(
    "until",
    [
        "9999-12-31T23:00:00-05:00",  # past year 9999 in UTC
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        "0012-03-04T05:06:07+00:00",  # a year of fewer than four digits
    ],
)
async def test_a_wake_time_at_the_edge_of_the_calendar_is_stored_and_listed(store: ThreadStore, until: str) -> None:
    # The model writes `until`: whatever it writes, the thread sleeps and listing keeps working.
    thread = Thread.start("user_input", "later").append(Event("wait_until", {"until": until, "reason": "r"}))
    assert thread.status == "sleeping" and thread.state.wake_at is not None
    await store.append(thread, after=0)
    [summary] = await store.list(status="sleeping")
    assert summary.wake_at == thread.state.wake_at
    due = [s.thread_id for s in await store.list(wake_before=datetime.now(UTC))]
    assert due == ([] if until.startswith("9999") else [thread.id])
    assert await store.load(thread.id) == thread


async def test_wait_for_work_returns_when_a_thread_becomes_claimable(store: ThreadStore) -> None:
    await store.wait_for_work(0)  # a PostgreSQL store starts listening here
    waiter = asyncio.create_task(store.wait_for_work(3600))
    await asyncio.sleep(0)
    await store.append(Thread.start("user_input", "new work"), after=0)
    await asyncio.wait_for(waiter, timeout=60)  # an hour unless the append announced itself
    # Work that became claimable while nobody waited is not lost either: the next wait returns at once.
    thread = Thread.start("user_input", "more")
    await store.append(thread, after=0)
    await asyncio.wait_for(store.wait_for_work(3600), timeout=60)
    # A released thread that is still ready is claimable again.
    [claimed] = await store.claim("w1", lease_seconds=30, limit=1)
    await store.wait_for_work(0)
    waiter = asyncio.create_task(store.wait_for_work(3600))
    await store.release(claimed, "w1")
    await asyncio.wait_for(waiter, timeout=60)


async def test_an_append_under_a_lost_lease_is_refused(store: ThreadStore) -> None:
    thread = Thread.start("user_input", "go")
    await store.append(thread, after=0)
    assert await store.claim("w1", lease_seconds=30, limit=1) == [thread.id]
    mine = thread.append(Event("note", {"by": "w1"}))
    await store.append(mine, after=1, owner="w1")
    await store.release(thread.id, "w1")
    assert await store.claim("w2", lease_seconds=30, limit=1) == [thread.id]
    with pytest.raises(LeaseLost, match="no longer holds the lease"):
        await store.append(mine.append(Event("note", {"by": "w1 again"})), after=2, owner="w1")
    theirs = mine.append(Event("note", {"by": "w2"}))
    await store.append(theirs, after=2, owner="w2")
    assert await store.load(thread.id) == theirs


async def test_a_step_of_several_events_is_written_whole_or_not_at_all(store: ThreadStore) -> None:
    thread = Thread.start("user_input", "go")
    await store.append(thread, after=0)
    assert await store.claim("w1", lease_seconds=30, limit=1) == [thread.id]
    call = Event("tool_call", {"intent": "noop", "arguments": {}, "policy": "auto"})
    step = thread.extend(
        [call, Event("tool_started", {"call_id": call.id, "intent": "noop", "idempotency_key": call.id})]
    )
    with pytest.raises(LeaseLost):
        await store.append(step, after=1, owner="w2")  # not w2's lease
    with pytest.raises(VersionConflict) as info:
        await store.append(step, after=0 + 2, owner="w1")  # a version it never read
    assert info.value.actual == 1
    assert await store.load(thread.id) == thread
    await store.append(step, after=1, owner="w1")
    assert await store.load(thread.id) == step and step.state.runnable is not None
    [summary] = await store.list()
    assert (summary.status, summary.events) == ("ready", 3)
    with pytest.raises(VersionConflict):
        await store.append(step.append(Event("note", {})), after=1, owner="w1")  # stale now
    assert await store.load(thread.id) == step


async def test_an_append_that_makes_a_thread_claimable_announces_it(store: ThreadStore) -> None:
    asked = Thread.start("user_input", "go").append(
        Event("request_human_input", {"question": "which tag?", "context": "", "format": "free_text"})
    )
    await store.append(asked, after=0)
    assert asked.status == "waiting_human" and asked.pending is not None
    await store.wait_for_work(0)  # a PostgreSQL store starts listening here
    await store.wait_for_work(0)  # and this clears what was announced before
    waiter = asyncio.create_task(store.wait_for_work(3600))
    await asyncio.sleep(0)
    await store.append(asked.respond(asked.pending.id, "v1.2.3"), after=2)
    await asyncio.wait_for(waiter, timeout=60)  # an hour unless the append announced itself


async def test_an_append_of_no_new_events_only_checks_the_version(store: ThreadStore) -> None:
    thread = Thread.start("user_input", "go")
    await store.append(thread, after=0)
    await store.append(thread, after=1)
    with pytest.raises(VersionConflict):
        await store.append(thread.append(Event("note", {})), after=2)  # claims a version not stored
    assert await store.load(thread.id) == thread
