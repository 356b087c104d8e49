"""Outbound webhooks through real servers: queued in the store, signed, retried, one delivery per change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dirty_equals import IsStr
from receiver import Receiver, wait_for
from serving import KEYS, SECRET, serving

from threadloom import Agent, Event, Runtime, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel
from threadloom.server import (
    Delivery,
    KeyRing,
    ServerConfig,
    Subscription,
    create_app,
    new_webhook_secret,
    open_tables,
    parse_keys,
)
from threadloom.server._links import read_token
from threadloom.server._outbox import WATERMARK, Backoff, where
from threadloom.server._status_changes import changes, delivery_id
from threadloom.store import open_store
from threadloom.thread import Thread

PUBLIC = "https://threads.example"


@tool(policy="approval")
def deploy(tag: str) -> str:
    """Deploy a tag to production."""
    return f"deployed {tag}"


def _decide(messages: Sequence[Message]) -> str:
    if "<deploy_result>" in messages[-1].content:
        return '{"intent": "done_for_now", "message": "Deployed."}'
    return '{"intent": "deploy", "tag": "v2"}'


def deployer() -> Agent:
    """Proposes a deploy (which waits for approval), then is done once it ran."""
    return Agent(name="deployer", model=ScriptedModel([_decide] * 100), tools=[deploy])


def quick() -> Agent:
    """Done at once."""
    return Agent(name="quick", model=ScriptedModel(['{"intent": "done_for_now", "message": "hi"}'] * 100))


@contextlib.contextmanager
def receiving(receiver: Receiver) -> Generator[str]:
    with serving(receiver.app()) as base:
        yield f"{base}/hook"


@contextlib.contextmanager
def server(store_url: str, url: str, secret: str, **config: Any) -> Generator[None]:
    """A real server on the store whose webhooks go to `url`; its worker runs the test agents."""
    runtime = Runtime(store=store_url, agents=[deployer(), quick()])
    statuses = config.pop("statuses", None)
    subscription = Subscription(url, secret) if statuses is None else Subscription(url, secret, statuses=statuses)
    settings = ServerConfig(
        runtime=runtime,
        keys=KeyRing(parse_keys(KEYS)),
        secret=SECRET,
        public_url=PUBLIC,
        subscriptions=(subscription,),
        **config,
    )
    with serving(create_app(settings)):
        yield


def setting(store_url: str, name: str) -> str | None:
    async def read() -> str | None:
        tables = await open_tables(store_url)
        try:
            return await tables.get_setting(name)
        finally:
            await tables.aclose()

    return asyncio.run(read())


def outbox(store_url: str) -> list[Delivery]:
    async def read() -> list[Delivery]:
        tables = await open_tables(store_url)
        try:
            return await tables.deliveries()
        finally:
            await tables.aclose()

    return asyncio.run(read())


def test_a_thread_waiting_then_done_is_delivered_once_per_change_signed_with_its_answer_link(store_url: str) -> None:
    secret = new_webhook_secret()
    receiver = Receiver(secret)
    with receiving(receiver) as url, server(store_url, url, secret), Runtime(store=store_url) as elsewhere:
        # Launched and approved from another runtime (as another process would): the server finds
        # the changes in the store, not by being told.
        thread_id = elsewhere.launch_sync("deployer", Event("user_input", {"text": "ship v2"}))
        wait_for(lambda: receiver.delivered("thread.waiting_approval"), "the waiting_approval webhook")
        (waiting,) = receiver.delivered()
        call = elsewhere.get_sync(thread_id).pending
        assert call is not None
        assert waiting.body == {
            "type": "thread.waiting_approval",
            "thread_id": thread_id,
            "agent": "deployer",
            "status": "waiting_approval",
            "pending": {"id": call.id, "type": "tool_call", "data": call.data, "at": call.at.isoformat()},
            "answer_url": IsStr(regex=rf"^{PUBLIC}/v1/answers/a1\..+"),
            "at": call.at.isoformat(),
        }
        token = read_token(SECRET, waiting.body["answer_url"].rsplit("/", 1)[1])
        assert (token.thread_id, token.event_id) == (thread_id, call.id)

        elsewhere.approve_sync(thread_id, call.id)
        wait_for(lambda: receiver.delivered("thread.done"), "the done webhook")
        wait_for(lambda: all(d.state == "delivered" for d in outbox(store_url)), "the outbox to drain")
        done = receiver.delivered("thread.done")[0].body
        assert done["status"] == "done" and "pending" not in done and "answer_url" not in done
    ids = [r.webhook_id for r in receiver.requests]
    assert len(ids) == 2 and len(set(ids)) == 2 and receiver.forged == 0
    assert sorted(d.delivery_id for d in outbox(store_url)) == sorted(ids)


def test_a_receiver_that_fails_at_first_gets_it_later(store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "threadloom.server.webhooks")
    secret = new_webhook_secret()
    receiver = Receiver(secret, fail_first=2)
    with receiving(receiver) as url, server(store_url, url, secret, statuses=frozenset({"done"})):
        with Runtime(store=store_url) as elsewhere:
            elsewhere.launch_sync("quick", Event("user_input", {"text": "hi"}))
        wait_for(lambda: receiver.delivered("thread.done"), "the done webhook after two failures")
        wait_for(lambda: outbox(store_url)[0].state == "delivered", "the delivery to be recorded")
    assert [r.answered for r in receiver.requests] == [503, 503, 204]
    assert len({r.webhook_id for r in receiver.requests}) == 1  # one message, retried under its id
    (delivery,) = outbox(store_url)
    assert delivery.attempts == 3 and delivery.last_error == "HTTP 503" and delivery.next_attempt_at is None
    failures = [r.getMessage() for r in caplog.records if r.name == "threadloom.server.webhooks"]
    assert len(failures) == 2 and all("HTTP 503" in line for line in failures)
    assert not any("/hook" in line for line in failures)  # a subscriber's path can hold a token: never logged


def test_what_was_queued_before_a_stop_is_delivered_after_the_restart(store_url: str) -> None:
    secret = new_webhook_secret()
    receiver = Receiver(secret, down=True)
    with receiving(receiver) as url:
        with server(store_url, url, secret, statuses=frozenset({"done"})), Runtime(store=store_url) as elsewhere:
            elsewhere.launch_sync("quick", Event("user_input", {"text": "hi"}))
            wait_for(lambda: [d.attempts for d in outbox(store_url)] == [1], "a first, failed, attempt")
        assert outbox(store_url)[0].state == "queued"
        assert setting(store_url, WATERMARK) is not None  # where the next scan starts
        receiver.down = False
        with server(store_url, url, secret, statuses=frozenset({"done"}), worker=False):
            wait_for(lambda: receiver.delivered("thread.done"), "the delivery after the restart")
            wait_for(lambda: outbox(store_url)[0].state == "delivered", "the delivery to be recorded")
    assert len(receiver.delivered()) == 1 and len(outbox(store_url)) == 1


def test_two_servers_on_one_store_deliver_each_change_once(store_url: str) -> None:
    secret = new_webhook_secret()
    receiver = Receiver(secret)
    done = frozenset({"done"})
    with (
        receiving(receiver) as url,
        server(store_url, url, secret, statuses=done),
        server(store_url, url, secret, statuses=done, worker=False),
        Runtime(store=store_url) as elsewhere,
    ):
        for n in range(6):
            elsewhere.launch_sync("quick", Event("user_input", {"text": f"hi {n}"}))
        wait_for(lambda: len(receiver.delivered()) >= 6, "six deliveries")
        wait_for(lambda: [d.state for d in outbox(store_url)] == ["delivered"] * 6, "the outbox to drain")
    ids = [r.webhook_id for r in receiver.requests]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert len({r.body["thread_id"] for r in receiver.requests}) == 6


def test_a_wait_that_ended_before_any_scan_is_still_reported(store_url: str) -> None:
    secret = new_webhook_secret()
    receiver = Receiver(secret)
    with Runtime(store=store_url, agents=[deployer()]) as runtime:
        # Waiting, approved and done before the server starts: only the log remembers the wait.
        thread_id = runtime.launch_sync("deployer", Event("user_input", {"text": "ship v2"}))
        runtime.run_until_idle_sync()
        call = runtime.get_sync(thread_id).pending
        assert call is not None
        runtime.approve_sync(thread_id, call.id)
        runtime.run_until_idle_sync()
        assert runtime.get_sync(thread_id).status == "done"
    waiting = frozenset({"waiting_approval"})  # a subscriber of the wait alone hears of it too
    with receiving(receiver) as url, server(store_url, url, secret, worker=False, statuses=waiting):
        wait_for(lambda: receiver.delivered(), "the wait")
        wait_for(lambda: [d.state for d in outbox(store_url)] == ["delivered"], "the outbox to drain")
    assert [(r.body["type"], r.body["thread_id"]) for r in receiver.requests] == [
        ("thread.waiting_approval", thread_id)
    ]


def test_changes_come_from_the_log_and_bookkeeping_changes_nothing() -> None:
    call = Event("tool_call", {"intent": "deploy", "arguments": {"tag": "v2"}, "policy": "approval"})
    thread = Thread([Event("user_input", {"text": "ship"}), call])
    noted = thread.append(Event("note_paged", {"who": "oncall"}))
    subscription = Subscription("http://127.0.0.1:9/hook", new_webhook_secret())
    before = [delivery_id(subscription, thread.id, c) for c in changes(thread)]
    after = [delivery_id(subscription, thread.id, c) for c in changes(noted)]
    assert [c.status for c in changes(noted)] == ["waiting_approval"] and before == after
    assert list(changes(noted, since=datetime.now(UTC) + timedelta(seconds=1))) == []
    other = Subscription("http://127.0.0.1:9/other", subscription.secret)
    assert delivery_id(other, thread.id, next(changes(thread))) not in before


def test_backoff_doubles_up_to_its_cap_and_gives_up() -> None:
    backoff = Backoff(first=1, cap=60, give_up_after=timedelta(hours=1))
    now = datetime.now(UTC)

    def wait(attempts: int, **kwargs: Any) -> float | None:
        then = backoff.retry_at(Delivery("m", "u", "{}", now, attempts=attempts), now, **kwargs)
        return None if then is None else (then - now).total_seconds()

    assert 0.75 <= (wait(0) or 0) <= 1 and 1.5 <= (wait(1) or 0) <= 2 and 3 <= (wait(2) or 0) <= 4
    assert 45 <= (wait(20) or 0) <= 60  # capped
    assert wait(3, retry_after=30) == 30  # a receiver may ask for longer
    assert (wait(3, retry_after=0) or 0) >= 6  # never shorter
    assert (wait(3, retry_after=10**9) or 0) <= 60  # nor longer than the cap
    late = Delivery("m", "u", "{}", now - timedelta(hours=2))
    assert backoff.retry_at(late, now) is None


def test_logs_show_a_subscribers_host_never_its_path() -> None:
    assert where("https://hooks.slack.com/services/T0/B0/secret-token?x=1") == "https://hooks.slack.com/..."
    assert where("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/..."


def test_a_wait_approved_before_any_scan_saw_it_is_reported_however_long_its_tool_runs(store_url: str) -> None:
    # A wait that began 15 minutes ago and was approved at once, before any scan saw it; the outbox
    # has run for 20 minutes; the approved tool runs until now (the thread is `ready`, unlisted).
    then = datetime.now(UTC) - timedelta(minutes=15)
    call = Event("tool_call", {"intent": "deploy", "arguments": {"tag": "v2"}, "policy": "approval"}, at=then)
    approval = Event("approval", {"call_id": call.id, "approved": True, "edits": {}}, at=then)
    thread = Thread([Event("user_input", {"text": "ship v2"}, at=then), call, approval], metadata={"agent": "deployer"})

    async def before() -> None:
        store = await open_store(store_url)
        tables = await open_tables(store)
        try:
            await store.append(thread, after=0)
            await tables.put_setting(WATERMARK, (then - timedelta(minutes=5)).isoformat())
        finally:
            await tables.aclose()
            await store.aclose()

    asyncio.run(before())
    secret = new_webhook_secret()
    receiver = Receiver(secret)
    started = datetime.now(UTC)
    with receiving(receiver) as url, server(store_url, url, secret, worker=False):
        wait_for(lambda: datetime.fromisoformat(setting(store_url, WATERMARK) or "") > started, "a scan")
        with Runtime(store=store_url, agents=[deployer()]) as runtime:
            runtime.run_until_idle_sync()  # the tool's result, then done
            assert runtime.get_sync(thread.id).status == "done"
        wait_for(lambda: receiver.delivered("thread.done"), "the done webhook")
        wait_for(lambda: all(d.state == "delivered" for d in outbox(store_url)), "the outbox to drain")
    assert sorted(r.body["type"] for r in receiver.requests) == ["thread.done", "thread.waiting_approval"]
