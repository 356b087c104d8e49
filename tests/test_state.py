from functools import reduce

from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom import Event, Thread
from threadloom.state import ThreadState, advance


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
