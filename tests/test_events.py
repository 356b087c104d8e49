import json
import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom import Event, InvalidTransition, Thread, ThreadDecodeError, UserError
from threadloom.events import storable_text

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
event_types = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
times = st.datetimes(
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    timezones=st.just(UTC),
)
events = st.builds(Event, event_types, json_values, at=times)
threads = st.builds(
    lambda evs, meta: Thread(evs, metadata=meta),  # pyright: ignore[reportUnknownLambdaType, reportUnknownArgumentType]
    st.lists(events, max_size=8, unique_by=lambda e: e.id),
    st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)


def deploy_call(policy: str = "approval") -> Event:
    return Event("tool_call", {"intent": "deploy_backend", "arguments": {"tag": "v1.2.3"}, "policy": policy})


@given(threads)
def test_json_round_trip_is_exact(thread: Thread) -> None:
    again = Thread.from_json(thread.to_json())
    assert again == thread
    assert [(e.id, e.type, e.data, e.at) for e in again.events] == [(e.id, e.type, e.data, e.at) for e in thread.events]
    assert again.state == thread.state
    assert again.to_json() == thread.to_json()


def test_event_defaults_and_validation() -> None:
    event = Event("slack_message", {"text": "hi"})
    assert event.id.startswith("ev_") and event.at.tzinfo is UTC
    with pytest.raises(UserError, match="snake_case"):
        Event("Slack Message", {})
    with pytest.raises(UserError, match="timezone-aware"):
        Event("x", None, at=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    with pytest.raises(UserError, match=r"data\.when holds a datetime"):
        Event("x", {"when": datetime.now(UTC)})  # pyright: ignore[reportArgumentType]
    with pytest.raises(UserError, match="nan"):
        Event("x", [float("nan")])
    with pytest.raises(UserError, match="non-string key"):
        Event("x", {1: "a"})  # pyright: ignore[reportArgumentType]


def test_event_time_is_normalised_to_utc() -> None:
    local = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert Event("x", at=local).at == datetime(2026, 1, 1, 10, tzinfo=UTC)


def test_append_returns_a_new_thread_and_leaves_the_old_one() -> None:
    first = Thread.start("user_input", {"text": "deploy"}, channel="#deploys")
    second = first.append(Event("tool_call", {"intent": "t", "arguments": {}, "policy": "auto"}))
    assert len(first.events) == 1 and len(second.events) == 2
    assert second.id == first.id and second.metadata == {"channel": "#deploys"}
    with pytest.raises(AttributeError, match="immutable"):
        first.id = "other"


def test_appending_to_an_old_version_branches_without_touching_the_newer_one() -> None:
    base = Thread.start("user_input", "a")
    left = base.append(Event("note", "left"))
    right = base.append(Event("note", "right"))
    assert [e.data for e in left.events] == ["a", "left"]
    assert [e.data for e in right.events] == ["a", "right"]
    assert left.append(Event("note", "more")).events[-1].data == "more"
    assert [e.data for e in right.events] == ["a", "right"]


def test_append_shares_storage_instead_of_copying() -> None:
    thread = Thread.start("user_input", "go")
    for i in range(1000):
        thread = thread.append(Event("note", i))
    longer = thread.append(Event("note", "last"))
    assert longer._items is thread._items  # pyright: ignore[reportPrivateUsage] - the property under test


def test_events_view_behaves_like_a_tuple() -> None:
    thread = Thread([Event("a", 1), Event("b", 2), Event("c", 3)])
    view = thread.events
    assert len(view) == 3 and view[-1].type == "c" and [e.type for e in view[1:]] == ["b", "c"]
    assert view == tuple(view) and view == list(view)
    with pytest.raises(IndexError):
        view[3]


def test_fork_copies_a_prefix_and_records_where_it_came_from() -> None:
    thread = Thread([Event("a", 1), Event("b", 2), Event("c", 3)], thread_id="th_1")
    fork = thread.fork(at=thread.events[1].id)
    assert [e.type for e in fork.events] == ["a", "b"]
    assert fork.id != "th_1" and fork.metadata == {"forked_from": "th_1", "forked_at": thread.events[1].id}
    assert len(thread.events) == 3
    with pytest.raises(UserError, match="no event has that id"):
        thread.fork(at="ev_missing")


def test_duplicate_event_ids_are_refused() -> None:
    event = Event("a", 1)
    with pytest.raises(UserError, match="appears twice"):
        Thread([event, event])


def test_approve_reject_respond_check_what_is_pending() -> None:
    thread = Thread.start("user_input", "deploy").append(deploy_call())
    call_id = thread.events[-1].id
    assert thread.pending is not None and thread.pending.id == call_id
    with pytest.raises(InvalidTransition, match="the pending one is") as info:
        thread.approve("ev_other")
    assert info.value.thread_id == thread.id
    with pytest.raises(InvalidTransition, match="nothing waits to respond"):
        thread.respond(call_id, "yes")
    approved = thread.approve(call_id, edits={"tag": "v1.2.4"})
    assert approved.status == "ready" and approved.state.runnable is not None
    assert dict(approved.state.runnable.arguments) == {"tag": "v1.2.4"}
    with pytest.raises(InvalidTransition, match="thread is 'ready'"):
        approved.approve(call_id)
    rejected = thread.reject(call_id, "use staging first")
    assert rejected.status == "ready" and rejected.state.runnable is None
    assert rejected.events[-1].data == {"call_id": call_id, "approved": False, "feedback": "use staging first"}


def test_respond_answers_a_human_request() -> None:
    asked = Thread.start("user_input", "hi").append(Event("request_more_information", {"message": "which env?"}))
    assert asked.status == "waiting_human" and asked.waiting_reason == "which env?"
    answered = asked.respond(asked.events[-1].id, "production")
    assert answered.status == "ready" and answered.events[-1].data == {
        "request_id": asked.events[-1].id,
        "text": "production",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "Invalid JSON"),
        ('{"id": "t", "metadata": {}}', "events: Field required"),
        (
            '{"id": "t", "metadata": {}, "events": [{"id": "e", "type": "BAD", "data": 1, "at": "2026-01-01T00:00:00Z"}]}',
            "snake_case",
        ),
        (
            '{"id": "t", "metadata": {}, "events": [{"id": "e", "type": "a", "data": 1, "at": "yesterday"}]}',
            "events.0.at",
        ),
        ("[1, 2]", "Input should be"),
    ],
)
def test_corrupt_json_gives_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ThreadDecodeError, match=message):
        Thread.from_json(text)


def test_to_json_shape() -> None:
    at = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    thread = Thread([Event("user_input", {"text": "hi"}, id="ev_1", at=at)], thread_id="th_1", metadata={"k": 1})
    document: JsonValue = json.loads(thread.to_json())
    assert document == {
        "id": "th_1",
        "metadata": {"k": 1},
        "events": [{"id": "ev_1", "type": "user_input", "data": {"text": "hi"}, "at": "2026-11-25T09:30:00Z"}],
    }


def test_threads_pickle_through_json() -> None:
    thread = Thread.start("user_input", "a").append(deploy_call())
    again = pickle.loads(pickle.dumps(thread))
    assert again == thread and again.status == "waiting_approval"


def test_non_events_are_refused() -> None:
    with pytest.raises(UserError, match="wrap it"):
        Thread.start("a").append({"type": "x"})  # pyright: ignore[reportArgumentType]
    with pytest.raises(UserError, match="hold Event objects|holds Event objects"):
        Thread([{"type": "x"}])  # pyright: ignore[reportArgumentType]
    with pytest.raises(UserError, match="metadata"):
        Thread(metadata={"when": object()})  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize(
    "data",
    [
        "ok" + chr(0xD800),
        {"text": ["fine", "bad" + chr(0xDC00)]},
        {"key" + chr(0xD800): 1},
        10**5000,
        {"n": -(10**4400)},
    ],
    ids=["surrogate", "nested", "key", "big-int", "big-negative"],
)
def test_an_event_refuses_what_no_store_can_hold(data: JsonValue) -> None:
    # Before: these passed Event() and made every store's json.dumps raise, so a worker retried forever.
    with pytest.raises(UserError, match="lone surrogate|too large"):
        Event("tool_response", data)


def test_storable_text_replaces_only_lone_surrogates() -> None:
    assert storable_text("ok" + chr(0xD800) + "é😀") == "ok\ufffdé😀"
    assert Event("error", {"output": storable_text("x" + chr(0xDFFF))}).data == {"output": "x\ufffd"}
