"""`Runtime.send_event` beside a running tool: the event waits for the tool's result, or is refused whole."""

import pytest

from threadloom import Event, Runtime, Thread
from threadloom.exceptions import ThreadBusy
from threadloom.store import ThreadStore


def running() -> Thread:
    """A thread whose call has started and has no result yet (a worker runs it, or died in it)."""
    thread = Thread.start("user_input", "check", agent="slow")
    thread = thread.append(Event("tool_call", {"intent": "check", "arguments": {}, "policy": "auto"}))
    return thread.append(Event("tool_started", {"call_id": thread.events[-1].id, "intent": "check"}))


async def test_an_event_for_a_running_tool_waits_then_is_refused_with_nothing_written(store: ThreadStore) -> None:
    runtime = Runtime(store=store)
    thread = running()
    await store.append(thread, after=0)
    with pytest.raises(ThreadBusy, match="is running a tool") as info:
        await runtime.send_event(thread.id, Event("slack_message", "news?"), patience=0.05)
    assert info.value.thread_id == thread.id and info.value.waited >= 0.05
    assert await runtime.get(thread.id) == thread
    noted = await runtime.send_event(thread.id, Event("note_seen", {"by": "ops"}), patience=0)  # a note never waits
    assert noted.events[-1].type == "note_seen"
    done = noted.append(Event("tool_response", {"call_id": thread.events[1].id, "intent": "check", "result": "ok"}))
    await store.append(done, after=len(noted))
    after = await runtime.send_event(thread.id, Event("slack_message", "news?"), patience=0)
    assert [e.type for e in after.events][-3:] == ["note_seen", "tool_response", "slack_message"]
