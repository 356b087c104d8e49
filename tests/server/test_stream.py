"""`GET /v1/threads/{id}/stream`: the log as server-sent events, resumable, to the thread's end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from bots import deploy_bot, launch, wait_for
from serving import READER, Serve

from threadloom import Event, Runtime, Thread
from threadloom.server._stream import stream_events


@dataclass
class Sent:
    """One server-sent event as a client reads it."""

    id: str | None
    event: str | None
    data: Any
    comment: str | None


def read(lines: Iterator[str]) -> Iterator[Sent]:
    """Server-sent events from the lines of a `text/event-stream` (the WHATWG rules this API uses)."""
    fields: dict[str, list[str]] = {}
    for line in lines:
        if line == "":
            if fields:
                data = "\n".join(fields["data"]) if "data" in fields else None
                yield Sent(
                    fields.get("id", [None])[0],
                    fields.get("event", [None])[0],
                    None if data is None else json.loads(data),
                    fields.get("", [None])[0],
                )
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))


def test_the_stream_sends_the_log_then_each_new_event_until_the_thread_is_done(serve: Serve) -> None:
    with serve([deploy_bot()]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        approve = f"/v1/threads/{thread['thread_id']}/approvals/{thread['pending']['id']}"
        got: list[Sent] = []
        with client.stream(
            "GET", f"/v1/threads/{thread['thread_id']}/stream", headers={"Authorization": f"Bearer {READER}"}
        ) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            for sent in read(stream.iter_lines()):
                got.append(sent)
                if len(got) == 2:  # the log so far: now a person approves, and the worker goes on
                    assert client.post(approve, json={"decision": "approve"}).status_code == 200
        done = client.get(f"/v1/threads/{thread['thread_id']}").json()
        assert done["status"] == "done"
        *events, end = got
        assert [(s.id, s.data) for s in events] == [(e["id"], e) for e in done["events"]]
        assert (end.event, end.id, end.data) == ("end", None, {"status": "done"})


def test_a_reconnect_with_last_event_id_misses_nothing_and_repeats_nothing(serve: Serve) -> None:
    with serve([deploy_bot()]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        url = f"/v1/threads/{thread['thread_id']}/stream"
        with client.stream("GET", url) as stream:
            first = next(read(stream.iter_lines()))  # the client drops after one event
        client.post(
            f"/v1/threads/{thread['thread_id']}/approvals/{thread['pending']['id']}", json={"decision": "approve"}
        )
        done = wait_for(client, thread["thread_id"], "done")
        with client.stream("GET", url, headers={"Last-Event-ID": first.id or ""}) as stream:
            rest = list(read(stream.iter_lines()))
        assert [first.id, *(s.id for s in rest[:-1])] == [e["id"] for e in done["events"]]
        with client.stream("GET", url, headers={"Last-Event-ID": done["events"][-1]["id"]}) as stream:
            assert [(s.event, s.data) for s in read(stream.iter_lines())] == [("end", {"status": "done"})]


def test_a_stream_is_refused_as_json_before_it_starts(serve: Serve) -> None:
    with serve([deploy_bot()], worker=False) as client:
        thread_id = launch(client)
        unknown = client.get(f"/v1/threads/{thread_id}/stream", headers={"Last-Event-ID": "ev_never"})
        assert unknown.status_code == 422 and unknown.json()["error"] == {
            "code": "unknown_event_id",
            "message": f"thread {thread_id!r} has no event 'ev_never' to resume after",
        }
        assert httpx.get(f"{client.base_url}/v1/threads/{thread_id}/stream").status_code == 401
        assert client.get("/v1/threads/nope/stream").status_code == 404


async def test_a_waiting_thread_gets_a_heartbeat_and_events_appended_by_anyone() -> None:
    runtime = Runtime(store="memory://")
    thread = Thread.start("user_input", "hi", agent="bot").append(Event("request_more_information", {"message": "?"}))
    await (await runtime.store()).append(thread, after=0)
    stream = stream_events(runtime, thread, 2, poll_seconds=0.01, heartbeat_seconds=0.05)
    beat = await anext(stream)
    assert (beat.comment, beat.id, beat.data) == ("waiting_human", None, None)
    await runtime.send_event(thread.id, Event("user_input", "more"))  # another writer, through the store
    await runtime.cancel(thread.id, "enough")
    [answer, failed, end] = [await anext(stream) for _ in range(3)]
    assert answer.data.type == "user_input" and failed.data.type == "failed" and end.event == "end"
    assert end.data == {"status": "failed"}
    await runtime.aclose()


async def test_a_stream_ends_once_its_client_may_no_longer_read() -> None:
    # A revoked key or an ended session: the stream already open must stop too, not run on.
    runtime = Runtime(store="memory://")
    thread = Thread.start("user_input", "hi", agent="bot").append(Event("request_more_information", {"message": "?"}))
    await (await runtime.store()).append(thread, after=0)
    verdicts = iter([True, False])

    async def allowed() -> bool:
        return next(verdicts)

    stream = stream_events(runtime, thread, 2, poll_seconds=0.01, recheck_seconds=0.02, allowed=allowed)
    sent = [s async for s in stream]  # ends by itself: the thread still waits
    assert [s.event for s in sent] == ["unauthorized"] and sent[0].data == {"reason": "the key may no longer read"}
    await runtime.aclose()
