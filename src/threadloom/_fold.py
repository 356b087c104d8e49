"""The fold of `threadloom.state`, tuned for speed: what `Thread` and every store's load use.

`threadloom.state.advance` is the definition of what each event does; this is the same fold
written as one loop over local variables (a store's load folds thousands of events), and
tests/test_state.py holds the two equal with hypothesis over every event type. A change to what an
event does goes into both (not public API).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import datetime
from types import MappingProxyType
from typing import Final

from pydantic import JsonValue

from .events import MODEL_RECORD_EVENTS, Event, is_bookkeeping
from .state import (
    NO_COUNTS,
    WAITING,
    RunnableCall,
    Status,
    ThreadState,
    Usage,
    call_arguments,
    data_field,
    record_usage,
    wake_time,
)

__all__ = ["fold"]

_EMPTY: Final[Mapping[str, JsonValue]] = MappingProxyType({})

# Each field of the fold's two frozen classes set directly (`object.__setattr__` looks the slot up
# by name on every call; the fold builds one state per appended event).
_SET_STATE: Final = tuple(ThreadState.__dict__[f.name].__set__ for f in fields(ThreadState))
_SET_CALL: Final = tuple(RunnableCall.__dict__[f.name].__set__ for f in fields(RunnableCall))


def fold(state: ThreadState, events: Iterable[Event]) -> ThreadState:  # noqa: C901 - one loop over locals on purpose
    """`state.fold(state, events)`, the same state, in a fraction of the time.

    It keeps the state in local variables while it walks the events and builds the frozen
    `ThreadState` (and `RunnableCall`) once at the end, so a store's load, which folds every event
    of a thread, pays a few comparisons per event rather than a new state object for each.
    """
    status: Status = state.status
    pending = state.pending
    initial = state.runnable
    # The runnable call as its parts; `r_args` None stands for "the call's own arguments", worked
    # out only for the call still runnable at the end (most calls finish a few events later).
    r_call: Event | None = None
    r_args: Mapping[str, JsonValue] | None = None
    r_started: Event | None = None
    if initial is not None:
        r_call, r_args, r_started = initial.call, initial.arguments, initial.started
    unresolved = state.unresolved
    counts: Mapping[str, int] = state.consecutive_errors
    counts_own: dict[str, int] | None = None  # `counts` once copied for changing
    model_errors = state.model_errors
    steps = state.steps
    wake_at = state.wake_at
    usage: Mapping[str, Usage] = state.usage
    usage_own: dict[str, Usage] | None = None
    event: Event | None = None
    for event in events:
        kind = event.type
        data = event.data
        # Narrowed by `isinstance`, not `cast`: `cast(dict[str, ...], ...)` builds the generic alias
        # at every event, a tenth of the fold's time.
        d: Mapping[str, JsonValue] = data if isinstance(data, dict) else _EMPTY
        if "model" in d and kind in MODEL_RECORD_EVENTS:
            record = d["model"]
            if isinstance(record, dict) and isinstance(name := record.get("name"), str):
                if usage_own is None:
                    usage = usage_own = dict(usage)
                usage_own[name] = (
                    (usage_own[name] + record_usage(record)) if name in usage_own else record_usage(record)
                )
        if status == "failed":
            continue  # terminal: later events are kept but change nothing (but what they cost)
        match kind:
            case "tool_call":
                # Prefetched calls are made by code before the model runs (factor 13), not model steps.
                if not d.get("prefetch"):
                    steps += 1
                model_errors = 0
                r_args = r_started = None
                if d.get("policy") == "approval":
                    status, pending, r_call = "waiting_approval", event, None
                else:
                    status, pending, r_call = "ready", None, event
            case "tool_started":
                if r_call is not None and r_call.id == d.get("call_id"):
                    r_started = event
            case "tool_response":
                intent = d.get("intent")
                if counts and isinstance(intent, str) and intent in counts:
                    counts = counts_own = {k: v for k, v in counts.items() if k != intent}
                if status not in WAITING:  # a thread waiting for a person keeps waiting
                    running = r_call
                    status, r_call, r_args, r_started, unresolved = "ready", None, None, None, None
                    if running is not None and data_field(running, "policy") == "external":
                        status, wake_at = "sleeping", None  # the outcome comes from outside
            case "error":
                if d.get("source") == "model":
                    model_errors += 1
                    steps += 1
                else:
                    intent = str(d.get("intent"))
                    if counts_own is None:
                        counts = counts_own = dict(counts)
                    counts_own[intent] = counts_own.get(intent, 0) + 1
                if status not in WAITING:  # the running call is finished, unless a person is awaited
                    status, r_call, r_args, r_started, unresolved = "ready", None, None, None, None
            case "approval":
                # A decision on nothing pending changes nothing (Thread.approve refuses it).
                if pending is not None and status == "waiting_approval" and d.get("call_id") == pending.id:
                    r_call = r_args = r_started = None
                    if d.get("approved") is True:
                        arguments = dict(call_arguments(pending))
                        edits = d.get("edits")
                        if isinstance(edits, dict):
                            arguments.update(edits)
                        r_call, r_args = pending, MappingProxyType(arguments)
                    status, pending, steps = "ready", None, 0
            case "request_human_input" | "request_more_information":
                reason = d.get("reason")
                if not reason:
                    steps += 1
                if reason == "outcome_unknown":
                    unresolved = _runnable(r_call, r_args, r_started)
                status, pending, r_call, r_args, r_started, model_errors = "waiting_human", event, None, None, None, 0
            case "human_response":
                # An answer to "outcome unknown" decides what happens to the started call.
                if (
                    unresolved is not None
                    and pending is not None
                    and data_field(pending, "reason") == "outcome_unknown"
                ):
                    decision = str(d.get("text") or "").strip().lower().replace(" ", "_")
                    if decision == "abort":
                        status, pending, r_call, r_args, r_started, unresolved = "failed", None, None, None, None, None
                        continue
                    if decision == "retry":
                        r_call, r_args, r_started = unresolved.call, unresolved.arguments, None
                    else:
                        r_call = r_args = r_started = None
                    unresolved = None
                # Resumed. A recorded call that has not run stays runnable.
                status, pending, model_errors, steps, wake_at = "ready", None, 0, 0, None
                counts, counts_own = NO_COUNTS, None
            case "done_for_now":
                status, pending, r_call, r_args, r_started, model_errors = "done", None, None, None, None, 0
                steps += 1
            case "failed":
                status, pending, r_call, r_args, r_started = "failed", None, None, None, None
            case "wait_until":
                status, pending, wake_at = "sleeping", None, wake_time(event)
                steps += 1
            case _ if is_bookkeeping(kind):
                pass  # a record of what threadloom or your code did: it wakes nothing
            case _:
                # Any other event comes from outside (user_input, a Slack message, a webhook):
                # it is a person or system speaking, so a waiting or finished thread resumes.
                # A call awaiting approval stays pending until someone decides on it; a recorded
                # call that has not run stays runnable: an outside event does not cancel it.
                if status != "waiting_approval":
                    status, pending, model_errors, steps, wake_at = "ready", None, 0, 0, None
                    counts, counts_own = NO_COUNTS, None
    if event is None:
        return state
    if r_call is None:
        runnable = None
    elif (
        initial is not None and r_call is initial.call and r_args is initial.arguments and r_started is initial.started
    ):
        runnable = initial
    else:
        runnable = _runnable(r_call, r_args, r_started)
    return _state(
        status,
        pending,
        runnable,
        unresolved,
        counts if counts_own is None else MappingProxyType(counts_own),
        model_errors,
        steps,
        event.id,
        wake_at,
        usage if usage_own is None else MappingProxyType(usage_own),
    )


(
    _S_STATUS,
    _S_PENDING,
    _S_RUNNABLE,
    _S_UNRESOLVED,
    _S_ERRORS,
    _S_MODEL_ERRORS,
    _S_STEPS,
    _S_LAST,
    _S_WAKE,
    _S_USAGE,
) = _SET_STATE


def _state(
    status: Status,
    pending: Event | None,
    runnable: RunnableCall | None,
    unresolved: RunnableCall | None,
    consecutive_errors: Mapping[str, int],
    model_errors: int,
    steps: int,
    last_event_id: str,
    wake_at: datetime | None,
    usage: Mapping[str, Usage],
) -> ThreadState:
    """`ThreadState(...)` in half the time: the fold makes one for every appended event."""
    new = object.__new__(ThreadState)
    _S_STATUS(new, status)
    _S_PENDING(new, pending)
    _S_RUNNABLE(new, runnable)
    _S_UNRESOLVED(new, unresolved)
    _S_ERRORS(new, consecutive_errors)
    _S_MODEL_ERRORS(new, model_errors)
    _S_STEPS(new, steps)
    _S_LAST(new, last_event_id)
    _S_WAKE(new, wake_at)
    _S_USAGE(new, usage)
    return new


def _runnable(
    call: Event | None, arguments: Mapping[str, JsonValue] | None, started: Event | None
) -> RunnableCall | None:
    if call is None:
        return None
    new = object.__new__(RunnableCall)
    set_call, set_arguments, set_started = _SET_CALL
    set_call(new, call)
    set_arguments(new, call_arguments(call) if arguments is None else arguments)
    set_started(new, started)
    return new
