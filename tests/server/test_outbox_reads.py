"""How far the outbox read each thread (`webhook_read:`), and what a thread never read reports: no change lost, none twice.

These pin what a prune of those settings must keep: the reverted one (a floor of event times past
every thread unchanged for the retention) lost the waiting_approval change of a fork at its pending
call and of a thread approved at once and left `ready`, both never read, with old events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from serving import KEYS, SECRET

from threadloom import Agent, Event, Runtime, tool
from threadloom.models import ScriptedModel
from threadloom.server import (
    KeyRing,
    ServerConfig,
    Subscription,
    Tables,
    _outbox,
    new_webhook_secret,
    open_tables,
    parse_keys,
)
from threadloom.server._outbox import Backoff, _Outbox  # pyright: ignore[reportPrivateUsage]
from threadloom.server._status_changes import changes, delivery_id
from threadloom.thread import Thread


@tool(policy="approval")
def deploy(tag: str) -> str:
    """Deploy a tag to production."""
    return f"deployed {tag}"


def deployer() -> Agent:
    """Proposes a deploy (which waits for approval), then is done once it ran; again each time it is told something."""
    outputs = ['{"intent": "deploy", "tag": "v2"}', '{"intent": "done_for_now", "message": "Deployed."}'] * 50
    return Agent(name="deployer", model=ScriptedModel(outputs), tools=[deploy])


@dataclass
class Side:
    """A runtime, the outbox's tables, and outboxes on them as a (re)started server runs one."""

    runtime: Runtime
    tables: Tables
    config: ServerConfig

    def outbox(self) -> _Outbox:
        return _Outbox(self.config, self.config.subscriptions, self.tables, Backoff(), 10.0)

    async def queued(self) -> set[str]:
        return {d.delivery_id for d in await self.tables.deliveries() if d.state == "queued"}

    async def deliver_all(self) -> None:
        for queued in await self.queued():
            await self.tables.delivered(queued)

    async def ids(self, thread_id: str) -> list[str]:
        """The delivery id of each change the thread's log holds that the subscription hears of, oldest first."""
        thread = await self.runtime.get(thread_id)
        [subscription] = self.config.subscriptions
        return [
            delivery_id(subscription, thread_id, change)
            for change in changes(thread)
            if change.status in subscription.statuses
        ]

    async def waiting(self) -> tuple[str, str]:
        """A thread launched and waiting for approval: its id and its pending call's."""
        thread_id = await self.runtime.launch("deployer", Event("user_input", {"text": "ship v2"}))
        await self.runtime.run_until_idle()
        pending = (await self.runtime.get(thread_id)).pending
        assert pending is not None
        return thread_id, pending.id

    async def read_to_its_end(self) -> tuple[str, str]:
        """A thread that waited for approval and is done, each change read by an outbox and delivered: as `waiting`."""
        thread_id, call_id = await self.waiting()
        outbox = self.outbox()
        await outbox.scan()
        await self.runtime.approve(thread_id, call_id)
        await self.runtime.run_until_idle()
        await outbox.scan()
        assert await self.queued() == set(await self.ids(thread_id))  # its wait and its done
        await self.deliver_all()
        return thread_id, call_id


@pytest.fixture
async def side(store_url: str) -> AsyncIterator[Side]:
    statuses = frozenset({"waiting_approval", "done"})
    subscription = Subscription("http://127.0.0.1:9/hook", new_webhook_secret(), statuses=statuses)
    async with Runtime(store=store_url, agents=[deployer()]) as runtime:
        tables = await open_tables(await runtime.store())
        config = ServerConfig(
            runtime=runtime, keys=KeyRing(parse_keys(KEYS)), secret=SECRET, subscriptions=(subscription,)
        )
        yield Side(runtime, tables, config)
        await tables.aclose()


def _a_week_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, every delivery and thread so far is older than the outbox's retention."""
    monkeypatch.setattr(_outbox, "_KEEP", timedelta(seconds=-1))


async def test_a_fork_at_its_pending_call_of_a_thread_done_long_ago_is_reported(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_id, call_id = await side.read_to_its_end()

    _a_week_on(monkeypatch)
    later = side.outbox()  # a restart past the retention: its first scan prunes
    await later.scan()
    # The fork copies the events up to the call, with their times: it waits for approval, never read.
    fork_id = await side.runtime.fork(thread_id, at=call_id)
    await later.scan()
    [wait] = await side.ids(fork_id)
    assert await side.queued() == {wait}


async def test_a_thread_approved_at_once_and_left_ready_past_the_retention_is_reported(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_id, call_id = await side.waiting()
    await side.runtime.approve(thread_id, call_id)  # before any scan saw the wait; no worker runs it
    _a_week_on(monkeypatch)
    outbox = side.outbox()
    await outbox.scan()  # it is `ready`: unlisted, never read; the sweep passes it
    assert await side.queued() == set()
    await side.runtime.run_until_idle()  # the worker is back
    await outbox.scan()
    assert await side.queued() == set(await side.ids(thread_id))  # the wait as well as the done


async def test_a_thread_read_long_ago_and_resumed_reports_only_its_new_changes(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_id, _ = await side.read_to_its_end()
    old = set(await side.ids(thread_id))

    _a_week_on(monkeypatch)
    later = side.outbox()
    await later.scan()
    assert await side.tables.deliveries() == []  # delivered and past the retention: deleted
    await side.runtime.send_event(thread_id, Event("user_input", {"text": "ship v3"}))
    await side.runtime.run_until_idle()  # it waits for approval again
    await later.scan()
    new = set(await side.ids(thread_id)) - old
    assert len(new) == 1 and await side.queued() == new  # the old changes, their rows gone, are not sent again


async def test_a_fork_made_now_at_a_call_older_than_the_outbox_is_reported(side: Side) -> None:
    # A thread waiting since an hour before the outbox's first scan: from before the subscription, unreported.
    then = datetime.now(UTC) - timedelta(hours=1)
    call = Event("tool_call", {"intent": "deploy", "arguments": {"tag": "v2"}, "policy": "approval"}, at=then)
    parent = Thread([Event("user_input", {"text": "ship v2"}, at=then), call], metadata={"agent": "deployer"})
    await (await side.runtime.store()).append(parent, after=0)
    outbox = side.outbox()
    await outbox.scan()
    assert await side.queued() == set()
    # Its fork waits for approval from now on: that is a change of now, whatever the copied call's time.
    fork_id = await side.runtime.fork(parent.id, at=call.id)
    await outbox.scan()
    [wait] = await side.ids(fork_id)
    assert await side.queued() == {wait}
