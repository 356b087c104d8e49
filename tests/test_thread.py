import json
import pickle
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom import Event, InvalidTransition, Thread, ThreadDecodeError, UserError
from threadloom.context import render

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


# Text as it may come from anywhere: lone surrogates, NUL and other controls, long runs.
raw_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=8) | st.sampled_from(
    ["ev" + chr(0xD800), "ev\x00", "x" * 201, "note\n", ""]
)
raw_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**4000, -(2**14_000), 2**14_001])
    | st.floats()
    | raw_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(raw_text, children, max_size=3),
    max_leaves=8,
)


@st.composite
def accepted_events(draw: st.DrawFn) -> list[Event]:
    """Events built from raw parts: each either refused with UserError or kept."""
    kept: list[Event] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.one_of(event_types, event_types, event_types, raw_text))  # mostly valid parts
        event_id = draw(st.one_of(st.none(), raw_text, raw_text))
        extra = {} if event_id is None else {"id": event_id}
        try:
            event = Event(kind, draw(json_values | raw_values), at=draw(times), **extra)
        except UserError:
            continue  # refused: never half-made, never another exception
        if all(e.id != event.id for e in kept):
            kept.append(event)
    return kept


@settings(max_examples=300, deadline=None)
@given(accepted_events(), st.dictionaries(raw_text, raw_values, max_size=3), st.none() | raw_text)
def test_whatever_event_accepts_the_json_round_trips(
    events: list[Event], metadata: dict[str, JsonValue], thread_id: str | None
) -> None:
    try:
        thread = Thread(events, thread_id=thread_id, metadata=metadata)
    except UserError:
        return  # metadata or id refused, with a clear error
    again = Thread.from_json(thread.to_json())
    assert again == thread and again.state == thread.state
    assert [(e.id, e.type, e.data, e.at) for e in again.events] == [(e.id, e.type, e.data, e.at) for e in thread.events]
    assert again.to_json() == thread.to_json()


def test_thread_ids_and_metadata_are_storable() -> None:
    for bad, message in [
        ("th\x00", "NUL character"),
        ("t" * 201, "at most 200"),
        ("th" + chr(0xDC00), "surrogate"),
    ]:
        with pytest.raises(UserError, match=message):
            Thread(thread_id=bad)
    with pytest.raises(UserError, match="lone surrogate"):
        Thread(metadata={"channel": "#a" + chr(0xD800)})
    with pytest.raises(UserError, match="too large"):
        Thread(metadata={"n": 10**5000})
    with pytest.raises(UserError, match="must be a mapping"):
        Thread(metadata=["agent"])  # pyright: ignore[reportArgumentType]
    assert Thread(thread_id="th_ü", metadata={"nul": "a\x00b"}).metadata == {"nul": "a\x00b"}


def deploy_call(policy: str = "approval") -> Event:
    return Event("tool_call", {"intent": "deploy_backend", "arguments": {"tag": "v1.2.3"}, "policy": policy})


@given(threads)
def test_json_round_trip_is_exact(thread: Thread) -> None:
    again = Thread.from_json(thread.to_json())
    assert again == thread
    assert [(e.id, e.type, e.data, e.at) for e in again.events] == [(e.id, e.type, e.data, e.at) for e in thread.events]
    assert again.state == thread.state
    assert again.to_json() == thread.to_json()


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


def test_a_fork_never_runs_a_call_on_the_approval_of_the_thread_it_copies() -> None:
    waiting = Thread.start("user_input", "deploy").append(deploy_call())
    call_id = waiting.events[-1].id
    approved = waiting.approve(call_id).append(Event("note", {"n": 1}))
    for at in (approved.events[2].id, approved.events[3].id):  # the approval, and an event after it
        with pytest.raises(UserError, match=f"fork at the call \\({call_id!r}\\)"):
            approved.fork(at=at)
    again = approved.fork(at=call_id)  # at the call: it waits for a decision of its own
    assert again.status == "waiting_approval" and again.pending is not None and again.pending.id == call_id
    auto = Thread.start("user_input", "deploy").append(deploy_call("auto"))
    assert auto.fork(at=auto.events[-1].id).state.runnable is not None  # no approval to reuse
    ran = approved.append(Event("tool_started", {"call_id": call_id, "intent": "deploy_backend"}))
    ran = ran.append(Event("tool_response", {"call_id": call_id, "intent": "deploy_backend", "result": "ok"}))
    assert ran.fork(at=ran.events[-1].id).state.runnable is None  # after its result: nothing to run


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
    with pytest.raises(InvalidTransition, match="nothing waits to respond") as info:
        thread.respond(call_id, "yes")
    # What does wait is named, and how to decide it: the call's id was given, which reads as a request's.
    assert str(info.value).endswith(f"; the call {call_id!r} waits to be approved or rejected")
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


def test_a_decision_records_who_made_it_and_the_model_never_sees_it() -> None:
    thread = Thread.start("user_input", "deploy").append(deploy_call())
    call_id = thread.events[-1].id
    approved = thread.approve(call_id, by="key:alice")
    assert approved.events[-1].data == {"call_id": call_id, "approved": True, "edits": {}, "by": "key:alice"}
    assert approved.state.runnable is not None
    rejected = thread.reject(call_id, "not today", by="answer_link")
    assert rejected.events[-1].data == {
        "call_id": call_id,
        "approved": False,
        "feedback": "not today",
        "by": "answer_link",
    }
    asked = Thread.start("user_input", "hi").append(Event("request_more_information", {"message": "which env?"}))
    answered = asked.respond(asked.events[-1].id, "staging", by="key:bob")
    assert answered.events[-1].data == {"request_id": asked.events[-1].id, "text": "staging", "by": "key:bob"}
    for decided in (approved, rejected, answered):
        for format in ("xml", "yaml", "messages"):
            shown = " ".join(m.content for m in render(decided, format=format))
            assert "key:" not in shown and "answer_link" not in shown


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


def refund_call() -> Event:
    arguments: dict[str, JsonValue] = {"order_id": "o_42", "amount_cents": 4599, "reason": None}  # defaults too
    return Event("tool_call", {"intent": "refund", "arguments": arguments, "policy": "approval"})


def test_approve_refuses_an_edit_to_an_argument_the_call_does_not_have() -> None:
    # Before: `amount` (a typo for `amount_cents`) was recorded and the tool refunded the original 4599.
    thread = Thread.start("user_input", "refund order 42").append(refund_call())
    assert thread.pending is not None
    with pytest.raises(UserError, match=r"edits to `amount`: `refund` takes `order_id`, `amount_cents`, `reason`"):
        thread.approve(thread.pending.id, {"amount": 100})
    with pytest.raises(UserError, match="edits to `amount`, `note`"):
        thread.approve(thread.pending.id, {"amount_cents": 100, "amount": 100, "note": "x"})
    assert len(thread.events) == 2 and thread.status == "waiting_approval"
    approved = thread.approve(thread.pending.id, {"amount_cents": 100, "reason": "damaged"})
    assert approved.state.runnable is not None
    assert dict(approved.state.runnable.arguments) == {"order_id": "o_42", "amount_cents": 100, "reason": "damaged"}


def test_approve_names_no_arguments_for_a_call_without_any() -> None:
    thread = Thread.start("user_input", "go").append(
        Event("tool_call", {"intent": "go", "arguments": {}, "policy": "approval"})
    )
    assert thread.pending is not None
    with pytest.raises(UserError, match="`go` takes no arguments"):
        thread.approve(thread.pending.id, {"now": True})
    assert thread.approve(thread.pending.id, {}).status == "ready"


def ask(question: str, choices: list[str], **extra: JsonValue) -> Thread:
    data: dict[str, JsonValue] = {"question": question, "format": "multiple_choice", "choices": list(choices), **extra}
    return Thread.start("user_input", "hi").append(Event("request_human_input", data))


def test_respond_refuses_an_answer_that_is_not_one_of_the_choices() -> None:
    # Before: any text was recorded as the answer to a multiple-choice question.
    asked = ask("Which environment?", ["staging", "production"])
    assert asked.pending is not None
    with pytest.raises(UserError, match="choose one of 'staging', 'production'"):
        asked.respond(asked.pending.id, "prod")
    assert len(asked.events) == 2 and asked.status == "waiting_human"
    answered = asked.respond(asked.pending.id, " Production")
    assert answered.status == "ready" and answered.events[-1].data == {
        "request_id": asked.pending.id,
        "text": " Production",  # recorded as given
    }


@pytest.mark.parametrize("answer", ["retry", "Retry", " Abort ", "mark_done", "Mark done"])
def test_the_outcome_unknown_question_takes_its_words(answer: str) -> None:
    asked = ask("Did it run?", ["retry", "mark_done", "abort"], reason="outcome_unknown")
    assert asked.pending is not None
    assert asked.respond(asked.pending.id, answer).events[-1].type == "human_response"
    with pytest.raises(UserError, match="choose one of 'retry', 'mark_done', 'abort'"):
        asked.respond(asked.pending.id, "yes")


def test_other_formats_take_any_answer() -> None:
    requests: list[dict[str, JsonValue]] = [
        {"question": "Deploy?", "format": "yes_no"},
        {"question": "Which?", "format": "multiple_choice", "choices": []},
        {"question": "Which?", "format": "free_text", "choices": ["a"]},
    ]
    for data in requests:
        asked = Thread.start("user_input", "hi").append(Event("request_human_input", data))
        assert asked.pending is not None and asked.respond(asked.pending.id, "whatever").status == "ready"


def test_events_read_newest_first_are_the_views_own() -> None:
    # Two threads extend one: they share its list, each view sees only its own events.
    base = Thread.start("user_input", "a").append(Event("note", 1))
    left, right = base.append(Event("note", "left")), base.append(Event("note", "right"))
    assert list(reversed(left.events)) == [left.events[2], base.events[1], base.events[0]]
    assert [e.data for e in reversed(right.events)] == ["right", 1, "a"]
    assert list(reversed(base.events)) == list(base.events)[::-1] and list(reversed(Thread().events)) == []
