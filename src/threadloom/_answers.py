"""A person's decision checked against what they were asked, before it enters the thread (not public API).

`Thread.approve` and `Thread.respond` call these so that a typo is heard by whoever decides, at once,
and nothing is appended; the model never hears of it.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import JsonValue

from .events import Event
from .exceptions import InvalidTransition, UserError
from .state import Status, ThreadState, call_arguments, data_field

__all__ = ["check_choice", "check_edits", "check_fork", "check_pending", "decided"]


# What a thread waiting for a person waits for, named in a refusal to decide it another way.
_WAITS_TO_BE: dict[str, str] = {
    "waiting_approval": "the call {!r} waits to be approved or rejected",
    "waiting_human": "the request {!r} waits to be answered",
}


def check_pending(state: ThreadState, thread_id: str, event_id: str, status: Status, verb: str) -> Event:
    """The pending event `event_id` of a thread (its `state`) in `status`, for a person to decide on.

    Raises:
        InvalidTransition: Nothing waits in `status`, or something else does; the message says what.
    """
    pending = state.pending
    if state.status == status and pending is not None and pending.id == event_id:
        return pending
    if state.status == status and pending is not None:
        hint = f"the pending one is {pending.id!r}"
    else:
        hint = f"the thread is {state.status!r}, nothing waits to {verb.split()[0]}"
        if pending is not None and state.status in _WAITS_TO_BE:
            hint += f"; {_WAITS_TO_BE[state.status].format(pending.id)}"
    raise InvalidTransition(f"cannot {verb} {event_id!r} in thread {thread_id!r}: {hint}", thread_id=thread_id)


def check_edits(call: Event, edits: Mapping[str, JsonValue]) -> None:
    """Refuse edits naming a key that is not one of the recorded call's arguments.

    The recorded `tool_call` carries every argument the tool runs with (defaults included), so a
    key it lacks is not a parameter of the tool: most often a typo (`amount` for `amount_cents`).

    Raises:
        UserError: An edit names an unknown key; the message lists the call's parameters.
    """
    arguments = call_arguments(call)
    unknown = [key for key in edits if key not in arguments]
    if not unknown:
        return
    parameters = ", ".join(f"`{key}`" for key in arguments) or "no arguments"
    names = ", ".join(f"`{key}`" for key in unknown)
    raise UserError(
        f"cannot approve {call.id!r} with edits to {names}: `{data_field(call, 'intent')}` takes {parameters}"
    )


def check_fork(state: ThreadState, thread_id: str, at: str) -> None:
    """Refuse a fork (with `state`) that would run a call on an approval it copied: an approval is for one run."""
    runnable = state.runnable
    if runnable is not None and runnable.started is None and data_field(runnable.call, "policy") == "approval":
        call = runnable.call.id
        raise UserError(
            f"cannot fork thread {thread_id!r} at {at!r}: the fork would run call {call!r} on this thread's "
            f"approval; fork at the call ({call!r}) to decide on it again"
        )


def check_choice(request: Event, text: str) -> None:
    """Refuse an answer to a `multiple_choice` request that is not one of its choices.

    Case, surrounding blanks and spaces for underscores do not matter (`"Mark done"` answers the
    choice `mark_done`, as the fold reads it); the answer is recorded as given.

    Raises:
        UserError: The request offers choices and `text` is none of them; the message lists them.
    """
    choices = data_field(request, "choices")
    if data_field(request, "format") != "multiple_choice" or not isinstance(choices, list) or not choices:
        return
    if choice_key(text) in {choice_key(str(choice)) for choice in choices}:
        return
    listed = ", ".join(repr(str(choice)) for choice in choices)
    raise UserError(f"cannot answer {request.id!r} with {text!r}: choose one of {listed}")


def choice_key(text: str) -> str:
    """How an answer is compared with a choice: `" Mark done"` and `"mark_done"` are the same."""
    return text.strip().lower().replace(" ", "_")


def decided(data: dict[str, JsonValue], by: str | None) -> dict[str, JsonValue]:
    """A decision's data with who made it (`by`), when known: for the operator, never rendered to the model."""
    return data if by is None else {**data, "by": by}
