"""Durable waiting: `wait_until` and `external` tools hold no process and resume from the store."""

from datetime import UTC, datetime, timedelta

from threadloom import Agent, Event, Runtime, Thread, tool
from threadloom.models import ScriptedModel
from threadloom.store import ThreadStore, ThreadSummary

DONE = '{"intent": "done_for_now", "message": "done"}'


def test_wait_until_sleeps_with_wake_at_and_any_outside_event_wakes() -> None:
    until = datetime(2030, 1, 5, 9, tzinfo=UTC)
    thread = Thread.start("user_input", "later").append(
        Event("wait_until", {"until": until.isoformat(), "reason": "x"})
    )
    assert thread.status == "sleeping" and thread.state.wake_at == until
    woken = thread.append(Event("wake_up", {}))
    assert woken.status == "ready" and woken.state.wake_at is None


async def test_the_model_can_wait_and_the_runtime_wakes_it_when_due(store: ThreadStore) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    wait = f'{{"intent": "wait_until", "until": "{soon.isoformat()}", "reason": "deploy window opens"}}'
    agent = Agent(name="patient", model=ScriptedModel([wait, DONE]), can_wait=True)
    runtime = Runtime(store=store, agents=[agent])
    thread_id = await runtime.launch("patient", Event("user_input", {"text": "deploy at 9"}))
    await runtime.run_until_idle()
    [summary] = await runtime.list(status="sleeping")
    assert summary.thread_id == thread_id and summary.wake_at is not None
    assert abs((summary.wake_at - soon).total_seconds()) < 0.001
    assert await runtime.wake_due() == []  # not yet
    assert await runtime.wake_due(now=soon + timedelta(seconds=1)) == [thread_id]
    assert await runtime.wake_due(now=soon + timedelta(seconds=1)) == []  # woken once
    await runtime.run_until_idle()
    thread = await runtime.get(thread_id)
    assert thread.status == "done" and [e.type for e in thread.events] == [
        "user_input", "wait_until", "wake_up", "done_for_now"
    ]  # fmt: skip


async def test_a_wake_due_listed_before_the_thread_moved_on_does_not_wake_it(store: ThreadStore) -> None:
    # Between the listing of due sleepers and the wake-up, the thread was woken by a message and
    # went on to ask a person; the late wake-up must not answer that question.
    past = datetime.now(UTC) - timedelta(minutes=1)
    thread = Thread.start("user_input", "later", agent="patient").append(
        Event("wait_until", {"until": past.isoformat(), "reason": "r"})
    )
    await store.append(thread, after=0)
    listed = await store.list(status="sleeping", wake_before=datetime.now(UTC))
    asking = thread.append(Event("slack_message", {"text": "actually, now"})).append(
        Event("request_human_input", {"question": "which environment?"})
    )
    await store.append(asking, after=len(thread))
    runtime = Runtime(store=store, agents=[])

    async def stale_list(**_: object) -> list[ThreadSummary]:
        return listed

    store.list = stale_list  # the listing as it was a moment ago
    assert await runtime.wake_due() == []
    stored = await runtime.get(thread.id)
    assert stored.status == "waiting_human" and stored.events == asking.events


async def test_a_wake_due_listed_before_the_thread_slept_again_leaves_it_asleep(store: ThreadStore) -> None:
    past, tomorrow = datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC) + timedelta(days=1)
    thread = Thread.start("user_input", "later", agent="patient").append(
        Event("wait_until", {"until": past.isoformat(), "reason": "r"})
    )
    await store.append(thread, after=0)
    listed = await store.list(status="sleeping", wake_before=datetime.now(UTC))
    again = thread.append(Event("slack_message", {"text": "not yet"})).append(
        Event("wait_until", {"until": tomorrow.isoformat(), "reason": "tomorrow"})
    )
    await store.append(again, after=len(thread))

    async def stale_list(**_: object) -> list[ThreadSummary]:
        return listed

    store.list = stale_list  # the listing as it was a moment ago
    assert await Runtime(store=store, agents=[]).wake_due() == []
    stored = await store.load(thread.id)
    assert stored.status == "sleeping" and stored.state.wake_at == tomorrow


async def test_an_external_tool_sleeps_until_its_result_arrives(store: ThreadStore) -> None:
    @tool(policy="external")
    def start_migration(database: str) -> dict[str, str]:
        """Start a long database migration; its result arrives by webhook."""
        return {"job": f"mig-{database}"}

    model = ScriptedModel(['{"intent": "start_migration", "database": "users"}', DONE])
    runtime = Runtime(store=store, agents=[Agent(name="dba", model=model, tools=[start_migration])])
    thread_id = await runtime.launch("dba", Event("user_input", {"text": "migrate users"}))
    await runtime.run_until_idle()
    thread = await runtime.get(thread_id)
    assert thread.status == "sleeping" and thread.state.wake_at is None
    assert len(model.requests) == 1  # no model call while it waits
    await runtime.send_event(
        thread_id, Event("migration_finished", {"job": "mig-users", "ok": True}), idempotency_key="hook-1"
    )
    await runtime.run_until_idle()
    assert (await runtime.get(thread_id)).status == "done"
    assert "migration_finished" in model.requests[1].messages[-1].content


def test_wait_until_is_offered_only_when_asked() -> None:
    assert "wait_until" not in Agent(name="a", model=ScriptedModel([])).render(Thread.start("x"))[0].content
    assert (
        "- wait_until:" in Agent(name="a", model=ScriptedModel([]), can_wait=True).render(Thread.start("x"))[0].content
    )
