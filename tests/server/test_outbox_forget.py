"""The outbox forgets how far it read a thread once the thread is fully read and past the retention, losing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from serving import KEYS, SECRET

from threadloom import Agent, Event, Runtime
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


def quick() -> Agent:
    """Done at once, each time it is told something."""
    return Agent(name="quick", model=ScriptedModel(['{"intent": "done_for_now", "message": "hi"}'] * 100))


@dataclass
class Side:
    """A runtime, the outbox's tables and a way to start an outbox process on them (as a server would)."""

    runtime: Runtime
    tables: Tables
    config: ServerConfig

    def outbox(self) -> _Outbox:
        """A new outbox, as a server (re)started on the store runs one."""
        return _Outbox(self.config, self.config.subscriptions, self.tables, Backoff(), 10.0)

    async def queued(self) -> list[str]:
        return sorted(d.delivery_id for d in await self.tables.deliveries() if d.state == "queued")

    async def deliver_all(self) -> None:
        for delivery_id in await self.queued():
            await self.tables.delivered(delivery_id)

    async def done(self, thread_id: str | None = None) -> str:
        """A thread told something, and done again (a `done` change): its id."""
        if thread_id is None:
            thread_id = await self.runtime.launch("quick", Event("user_input", {"text": "hi"}))
        else:
            await self.runtime.send_event(thread_id, Event("user_input", {"text": "again"}))
        await self.runtime.run_until_idle()
        return thread_id


@pytest.fixture
async def side(store_url: str) -> AsyncIterator[Side]:
    subscription = Subscription("http://127.0.0.1:9/hook", new_webhook_secret(), statuses=frozenset({"done"}))
    async with Runtime(store=store_url, agents=[quick()]) as runtime:
        tables = await open_tables(await runtime.store())
        keys = KeyRing(parse_keys(KEYS))
        yield Side(
            runtime, tables, ServerConfig(runtime=runtime, keys=keys, secret=SECRET, subscriptions=(subscription,))
        )
        await tables.aclose()


def _a_week_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, every delivery and thread so far is older than the outbox's retention."""
    monkeypatch.setattr(_outbox, "_KEEP", timedelta(seconds=-1))


async def test_a_thread_read_and_delivered_loses_its_read_setting_and_a_later_change_still_counts_once(
    side: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_id = await side.done()
    first = side.outbox()
    await first.scan()
    assert await side.tables.get_setting(f"webhook_read:{thread_id}") is not None
    [delivered] = await side.queued()
    await side.deliver_all()

    _a_week_on(monkeypatch)
    later = side.outbox()  # a restart: its first scan prunes
    await later.scan()
    assert await side.tables.deliveries() == []  # delivered, past the retention: deleted
    assert await side.tables.get_setting(f"webhook_read:{thread_id}") is None

    await side.done(thread_id)
    await later.scan()
    [again] = await side.queued()
    assert again != delivered  # the new `done` only: the old one, its row deleted, is not sent again


async def test_a_crash_before_the_prune_loses_nothing(side: Side, monkeypatch: pytest.MonkeyPatch) -> None:
    thread_id = await side.done()
    await side.outbox().scan()  # read and queued, never sent: this process dies here
    [waiting] = await side.queued()

    _a_week_on(monkeypatch)
    restarted = side.outbox()
    await restarted.scan()
    assert await side.queued() == [waiting]  # still due: a queued delivery is never pruned
    await side.done(thread_id)
    await restarted.scan()
    queued = await side.queued()
    assert len(queued) == 2 and waiting in queued  # the new change as well, nothing twice
    other = await side.done()  # a thread first read after the prune counts all it holds
    await restarted.scan()
    assert len(await side.queued()) == 3 and await side.tables.get_setting(f"webhook_read:{other}") is not None
