from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom import Event, Thread
from threadloom._fold import fold as fast_fold
from threadloom.events import BOOKKEEPING_EVENTS, is_bookkeeping
from threadloom.state import ThreadState, advance, fold


def call(intent: str, policy: str = "auto", **arguments: JsonValue) -> Event:
    return Event("tool_call", {"intent": intent, "arguments": arguments, "policy": policy})


def result(of: Event) -> Event:
    assert isinstance(of.data, dict)
    return Event("tool_response", {"call_id": of.id, "intent": of.data["intent"], "result": "ok"})


def tool_error(of: Event) -> Event:
    assert isinstance(of.data, dict)
    data = {"source": "tool", "intent": of.data["intent"], "call_id": of.id, "message": "boom"}
    return Event("error", data)


def test_a_new_thread_is_ready() -> None:
    thread = Thread.start("user_input", "hi")
    assert (thread.status, thread.pending, thread.waiting_reason) == ("ready", None, None)


def test_auto_call_is_runnable_until_its_result() -> None:
    c = call("list_git_tags")
    thread = Thread.start("user_input", "hi").append(c)
    assert thread.status == "ready" and thread.state.runnable is not None
    assert thread.state.runnable.call is c and thread.state.runnable.intent == "list_git_tags"
    assert thread.append(result(c)).state.runnable is None


def test_approval_call_waits_and_approval_makes_it_runnable_once() -> None:
    c = call("deploy_backend", "approval", tag="v1")
    thread = Thread.start("user_input", "hi").append(c)
    assert thread.status == "waiting_approval" and thread.pending is c
    assert thread.waiting_reason == "approval to run `deploy_backend`"
    approved = thread.approve(c.id)
    assert approved.state.runnable is not None and dict(approved.state.runnable.arguments) == {"tag": "v1"}
    done = approved.append(result(c))
    assert done.status == "ready" and done.state.runnable is None


def test_external_events_do_not_release_a_pending_approval() -> None:
    c = call("deploy_backend", "approval")
    thread = Thread.start("user_input", "hi").append(c).append(Event("slack_message", "any news?"))
    assert thread.status == "waiting_approval" and thread.pending is c


def test_external_events_resume_waiting_and_done_threads() -> None:
    thread = Thread.start("user_input", "hi").append(Event("done_for_now", {"message": "bye"}))
    assert thread.status == "done"
    assert thread.append(Event("user_input", "one more thing")).status == "ready"
    asked = Thread.start("user_input", "hi").append(Event("request_human_input", {"question": "which?"}))
    assert asked.status == "waiting_human" and asked.waiting_reason == "which?"
    assert asked.append(Event("slack_message", "prod")).status == "ready"


def test_consecutive_errors_count_per_tool_and_reset_on_success() -> None:
    a, b = call("a"), call("b")
    thread = Thread.start("user_input", "hi").extend([a, tool_error(a), b, tool_error(b), a, tool_error(a)])
    assert dict(thread.consecutive_errors) == {"a": 2, "b": 1}
    fixed = thread.extend([a2 := call("a"), result(a2)])
    assert dict(fixed.consecutive_errors) == {"b": 1}


def test_a_human_answer_resets_error_counts_and_steps() -> None:
    a = call("a")
    thread = Thread.start("user_input", "hi").extend([a, tool_error(a)])
    thread = thread.append(Event("request_human_input", {"question": "help?", "reason": "tool_errors"}))
    answered = thread.respond(thread.events[-1].id, "try again")
    assert dict(answered.consecutive_errors) == {} and answered.state.steps == 0


def test_steps_count_model_decisions_but_not_prefetch_or_escalations() -> None:
    prefetch = Event("tool_call", {"intent": "tags", "arguments": {}, "policy": "auto", "prefetch": True})
    thread = Thread.start("user_input", "hi").extend([prefetch, result(prefetch), a := call("a"), result(a)])
    assert thread.state.steps == 1
    thread = thread.append(Event("error", {"source": "model", "message": "bad json"}))
    assert thread.state.steps == 2 and thread.state.model_errors == 1
    thread = thread.append(Event("request_human_input", {"question": "?", "reason": "max_steps"}))
    assert thread.state.steps == 2 and thread.state.model_errors == 0


def test_failed_is_terminal() -> None:
    thread = Thread.start("user_input", "hi").append(Event("failed", {"reason": "aborted"}))
    assert thread.append(Event("user_input", "hello?")).status == "failed"


def test_fold_is_advance_folded() -> None:
    events = [Event("user_input", "hi"), c := call("a"), result(c)]
    assert fold(ThreadState(), events) == reduce(advance, events, ThreadState()) == Thread(events).state
    assert fold(ThreadState(), []) == ThreadState()


def test_a_decision_on_nothing_pending_changes_nothing() -> None:
    thread = Thread.start("user_input", "hi")
    stray = Event("approval", {"call_id": "ev_x", "approved": True})
    assert advance(thread.state, stray).status == "ready"
    assert advance(thread.state, stray).runnable is None


event_kinds = st.sampled_from(
    [
        "user_input",
        "tool_call_auto",
        "tool_call_approval",
        "tool_response",
        "error_tool",
        "error_model",
        "request_human_input",
        "human_response",
        "done_for_now",
        "approval",
        "slack_message",
    ]
)


def build(kind: str, thread_events: list[Event]) -> Event:
    last_call = next((e for e in reversed(thread_events) if e.type == "tool_call"), None)
    call_id = last_call.id if last_call else "ev_none"
    match kind:
        case "tool_call_auto":
            return call("a")
        case "tool_call_approval":
            return call("b", "approval")
        case "tool_response":
            return Event("tool_response", {"call_id": call_id, "intent": "a", "result": 1})
        case "error_tool":
            return Event("error", {"source": "tool", "intent": "a", "call_id": call_id, "message": "x"})
        case "error_model":
            return Event("error", {"source": "model", "message": "x"})
        case "approval":
            return Event("approval", {"call_id": call_id, "approved": True, "edits": {}})
        case "request_human_input":
            return Event(kind, {"question": "q"})
        case "done_for_now":
            return Event(kind, {"message": "m"})
        case _:
            return Event(kind, {"text": "t"})


@settings(deadline=None)
@given(st.lists(event_kinds, max_size=30))
def test_state_is_a_left_fold_and_recomputes_identically(kinds: list[str]) -> None:
    built: list[Event] = []
    for kind in kinds:
        built.append(build(kind, built))
    thread = Thread().extend(built)
    assert thread.state == reduce(advance, built, ThreadState(last_event_id=None))
    assert Thread(built).state == thread.state
    assert Thread.from_json(thread.to_json()).state == thread.state
    # Invariants of the derived state.
    s = thread.state
    assert (s.pending is not None) == (s.status in ("waiting_approval", "waiting_human"))
    assert s.runnable is None or s.status == "ready"
    assert all(v > 0 for v in s.consecutive_errors.values())


# -- the fast fold against the definition -----------------------------------------------------------
# `Thread` and the stores' loads fold with `threadloom._fold.fold`, one loop over local variables;
# `state.advance` is the definition. Both must agree on every sequence of events, whatever they carry.


_payload: st.SearchStrategy[JsonValue] = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.integers(-2, 2),
    st.lists(st.integers(), max_size=2).map(lambda v: cast(JsonValue, v)),
)
_tokens: st.SearchStrategy[JsonValue] = st.one_of(st.integers(-5, 50), st.booleans())
_model: st.SearchStrategy[dict[str, JsonValue] | None] = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        cast(dict[str, st.SearchStrategy[JsonValue]], {"name": st.sampled_from(["m1", "m2"])}),
        optional={"input_tokens": _tokens, "output_tokens": _tokens},
    ),
    st.just(cast(dict[str, JsonValue], {"name": 3})),
)


# The types the fold knows, the common ones more often, bookkeeping ones and outside ones.
_KINDS = (
    *("tool_call", "tool_started", "tool_response", "error", "approval") * 4,
    *("request_human_input", "request_more_information", "human_response") * 2,
    *("user_input", "slack_message", "done_for_now", "wait_until"),
    *("note", "note_slack_message_sent", "human_contacted", "run_error", "notes"),
    "failed",  # terminal: rare, or most of each example would change nothing
)


# A thread in each status, and bookkeeping events of each kind: none may change where it stands.
def _in_status(status: str) -> Thread:
    thread = Thread.start("user_input", "hi")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    match status:
        case "waiting_approval":
            return thread.append(call("deploy", "approval", tag="v1"))
        case "waiting_human":
            return thread.append(Event("request_human_input", {"question": "which env?"}))
        case "sleeping":
            return thread.append(Event("wait_until", {"until": later, "reason": "CI runs"}))
        case "done":
            return thread.append(Event("done_for_now", {"message": "bye"}))
        case "failed":
            return thread.append(Event("failed", {"reason": "aborted"}))
        case _:
            a = call("a")
            return thread.extend([a, tool_error(a), call("b")])  # ready, with a count and a runnable call


_BOOKKEEPING_KINDS = sorted({*BOOKKEEPING_EVENTS, "note_slack_message_sent", "note_eval_scored"} - {"tool_started"})


@pytest.mark.parametrize("status", ["ready", "waiting_approval", "waiting_human", "sleeping", "done", "failed"])
@pytest.mark.parametrize("kind", _BOOKKEEPING_KINDS)
def test_a_bookkeeping_event_leaves_every_status_as_it_was(status: str, kind: str) -> None:
    # Before: a type the fold did not know (`slack_message_sent`, `note_...`) woke the thread.
    thread = _in_status(status)
    assert thread.status == status
    after = thread.append(Event(kind, {"channel": "slack", "text": "asked @alex"}))
    assert is_bookkeeping(kind)
    assert (after.status, after.pending, after.state.wake_at) == (status, thread.pending, thread.state.wake_at)
    assert replace(after.state, last_event_id=thread.state.last_event_id) == thread.state
    assert after.state == reduce(advance, after.events, ThreadState())


@pytest.mark.parametrize("status", ["ready", "waiting_approval", "waiting_human", "sleeping", "done", "failed"])
def test_tool_started_marks_the_runnable_call_and_nothing_else(status: str) -> None:
    thread = _in_status(status)
    runnable = thread.state.runnable
    started = Event("tool_started", {"call_id": runnable.call.id if runnable else "ev_none", "intent": "b"})
    after = thread.append(started)
    assert (after.status, after.pending, after.state.wake_at) == (status, thread.pending, thread.state.wake_at)
    assert replace(after.state, last_event_id=None, runnable=runnable) == replace(thread.state, last_event_id=None)
    assert after.state.runnable == (replace(runnable, started=started) if runnable else None)


def test_bookkeeping_is_decided_by_the_type_alone() -> None:
    assert all(map(is_bookkeeping, ["tool_started", "human_contacted", "note", "run_error", "note_x"]))
    assert not any(map(is_bookkeeping, ["user_input", "notes", "slack_message_sent", "tool_call", "annotated"]))


@st.composite
def any_events(draw: st.DrawFn) -> list[Event]:
    """Events of every type the fold knows (and others), pointing at earlier events or at nothing."""
    events: list[Event] = []
    for _ in range(draw(st.integers(0, 40))):
        # What a call_id / request_id names: the newest call or request, an older event, or nothing.
        newest = [e.id for e in reversed(events) if e.type in ("tool_call", "request_human_input")][:1]
        ref = draw(st.sampled_from([*newest, *[e.id for e in events[-2:]], "ev_none"]))
        intent = draw(st.sampled_from(["a", "b", 7]))
        kind = draw(st.sampled_from(_KINDS))
        data: dict[str, JsonValue] = {}
        match kind:
            case "tool_call":
                data = {
                    "intent": intent,
                    "arguments": draw(st.sampled_from([{"x": 1}, {}, "no"])),
                    "policy": draw(st.sampled_from(["auto", "approval", "external"])),
                }
                if draw(st.booleans()):
                    data["prefetch"] = True
            case "tool_started" | "tool_response":
                data = {"call_id": ref, "intent": intent}
            case "approval":
                data = {
                    "call_id": ref,
                    "approved": draw(st.sampled_from([True, False, 1])),
                    "edits": draw(st.sampled_from([{"x": 2, "y": 3}, {}, None])),
                }
            case "error":
                data = {"source": draw(st.sampled_from(["tool", "model"])), "intent": intent, "call_id": ref}
            case "request_human_input" | "request_more_information":
                data = {"question": "q", "message": "m"}
                if reason := draw(st.sampled_from([None, "outcome_unknown", "tool_errors", ""])):
                    data["reason"] = reason
            case "human_response":
                data = {"request_id": ref, "text": draw(st.sampled_from(["retry", "ok", "", "Retry", " Abort "]))}
            case "wait_until":
                data = {"until": draw(st.sampled_from(["2030-01-01T00:00:00+02:00", "2030-01-01T00:00:00", "soon"]))}
            case _:
                data = {"text": "t"}
        if (record := draw(_model)) is not None:
            data["model"] = record
        # Now and then a payload that is not an object at all: the fold must not trip on it.
        events.append(Event(kind, draw(_payload) if draw(st.integers(0, 7)) == 7 else data))
    return events


@settings(max_examples=400, deadline=None)
@given(any_events(), st.integers(0, 40))
def test_the_fast_fold_is_advance_folded(events: list[Event], cut: int) -> None:
    expected = reduce(advance, events, ThreadState())
    assert fold(ThreadState(), events) == expected == fast_fold(ThreadState(), events)
    assert Thread(events).state == expected  # a store's load
    assert Thread().extend(events).state == expected  # one append at a time
    # Resuming the fold from any state it reached goes on the same way.
    assert fast_fold(fast_fold(ThreadState(), events[:cut]), events[cut:]) == expected


def test_a_retried_call_keeps_the_arguments_it_was_approved_with() -> None:
    c = call("deploy", "approval", tag="v1")
    events = [
        Event("user_input", "hi"),
        c,
        Event("approval", {"call_id": c.id, "approved": True, "edits": {"tag": "v2"}}),
        Event("tool_started", {"call_id": c.id, "intent": "deploy", "idempotency_key": "k"}),
        asked := Event("request_human_input", {"question": "did it run?", "reason": "outcome_unknown"}),
        Event("human_response", {"request_id": asked.id, "text": "retry"}),
    ]
    state = Thread(events).state
    assert state == reduce(advance, events, ThreadState()) == Thread().extend(events).state
    assert state.runnable is not None and state.runnable.started is None
    assert dict(state.runnable.arguments) == {"tag": "v2"}
