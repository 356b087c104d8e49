"""The commands that change a thread: approve, reject, respond, send an event, cancel, fork."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated

import typer
from pydantic import JsonValue, ValidationError

from .._type_names import type_name
from ..agent import Agent
from ..events import APPROVAL, HUMAN_RESPONSE, RUNTIME_EVENTS, Event
from ..exceptions import IdempotencyKeyReused, ThreadloomError, UserError
from ..runtime import Runtime
from ..state import TOOL_CALL
from ..store import DEFAULT_URL
from ..store.base import ANSWERS
from ..thread import Thread
from ._app import KeyOption, OptionalAgentsOption, StoreOption, fail, load, load_agents, run, say, status_line

__all__ = ["approve", "cancel", "check_edits", "fork", "reject", "respond", "send_event"]

_CallId = Annotated[str | None, typer.Argument(help="The pending call; the one pending by default.")]


def fork(
    thread_id: str, at: Annotated[str, typer.Option(help="Last event id to keep.")], store: StoreOption = DEFAULT_URL
) -> None:
    """Copy a thread up to an event into a new thread, and print the new thread's id."""

    async def work(runtime: Runtime) -> str:
        await load(runtime, thread_id)  # an unreadable thread is named, not dumped
        return await runtime.fork(thread_id, at)

    say(run(store, [], work))


def approve(
    thread_id: str,
    call_id: _CallId = None,
    edit: Annotated[list[str] | None, typer.Option(help="key=JSON value to change before it runs.")] = None,
    agents: OptionalAgentsOption = None,
    store: StoreOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Approve the pending tool call; a worker runs it next.

    With `--agents`, edits are checked against the tool's parameters first: an unknown name or a
    value of the wrong type is refused (exit 2) and nothing is recorded.
    """
    edits = _edits(edit or [])
    loaded = load_agents(agents or [])

    async def work(runtime: Runtime) -> Thread:
        def check(thread: Thread, pending: str) -> None:
            agent = runtime.agents.get(str(thread.metadata.get("agent")))
            if edits and agent is not None:
                check_edits(agent, thread, pending, edits)  # a UserError: exit 2, nothing recorded

        async def decide(call: str) -> Thread:
            return await runtime.approve(thread_id, call, edits or None, idempotency_key=key)

        return await _decided(runtime, thread_id, key, APPROVAL, call_id, decide, check)

    status_line(run(store, loaded, work))


def check_edits(agent: Agent, thread: Thread, call_id: str, edits: Mapping[str, JsonValue]) -> None:
    """Refuse edits that would not fit the tool: the call's arguments with the edits laid over must validate.

    Raises:
        UserError: An edit names no parameter of the tool, or the merged arguments do not validate
            (`parameters` lists the tool's parameters).
    """
    # The Runtime is to check this itself (issue 15.1); until it does, the CLI checks when it has the agent.
    call = next((e for e in thread.events if e.id == call_id and e.type == TOOL_CALL), None)
    data = call.data if call is not None else None
    intent = data.get("intent") if isinstance(data, dict) else None
    tool = agent.tools.get(intent) if isinstance(intent, str) else None
    if not isinstance(data, dict) or tool is None:
        return  # not a call of this agent's tools: Runtime.approve says what is wrong
    fields = tool.arguments.model_fields
    parameters = [f"{name}: {type_name(info.annotation)}" for name, info in fields.items()]
    unknown = [name for name in edits if name not in fields]
    problem = f"no parameter {', '.join(map(repr, unknown))}" if unknown else None
    if problem is None:
        arguments = data.get("arguments")
        merged: dict[str, JsonValue] = {**(arguments if isinstance(arguments, dict) else {}), **edits}
        try:
            tool.arguments.model_validate(merged)
        except ValidationError as exc:
            problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    if problem is not None:
        error = UserError(f"edits to {tool.name!r} do not fit its parameters: {problem}")
        error.parameters = parameters  # pyright: ignore[reportAttributeAccessIssue] - read by with_parameters
        raise error


def reject(
    thread_id: str,
    feedback: Annotated[str, typer.Option(help="Why, for the model.")],
    call_id: _CallId = None,
    store: StoreOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Reject the pending tool call; the feedback goes to the model."""

    async def work(runtime: Runtime) -> Thread:
        async def decide(call: str) -> Thread:
            return await runtime.reject(thread_id, call, feedback, idempotency_key=key)

        return await _decided(runtime, thread_id, key, APPROVAL, call_id, decide)

    status_line(run(store, [], work))


def respond(thread_id: str, text: str, store: StoreOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """Answer the pending human request."""

    async def work(runtime: Runtime) -> Thread:
        async def decide(request: str) -> Thread:
            return await runtime.respond(thread_id, request, text, idempotency_key=key)

        return await _decided(runtime, thread_id, key, HUMAN_RESPONSE, None, decide)

    status_line(run(store, [], work))


def send_event(
    thread_id: str,
    type_: Annotated[str, typer.Argument(metavar="TYPE", help="The event's type, e.g. deploy_finished.")],
    data: Annotated[str, typer.Argument(help="The event's data as JSON.")] = "{}",
    store: StoreOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Append an outside event (a webhook's result, a reply); a thread waiting for a person resumes.

    threadloom's own types (`approval`, `tool_call`, `human_response`, ...) are refused, as the HTTP
    API refuses them: decide with approve, reject, respond or cancel.
    """
    # An `approval` sent as an event would name any `by` and skip the check of its edits, and a worker
    # would run the tool: a decision goes through the command that makes it.
    if type_ in RUNTIME_EVENTS:
        fail(
            f"events of type {type_!r} are written by threadloom itself; "
            "use threads approve, reject, respond or cancel instead"
        )
    try:
        value: JsonValue = json.loads(data)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="DATA") from exc
    try:
        event = Event(type_, value)
    except (ThreadloomError, ValueError, TypeError) as exc:
        raise typer.BadParameter(str(exc), param_hint="TYPE / DATA") from exc

    async def work(runtime: Runtime) -> Thread:
        await load(runtime, thread_id)
        return await runtime.send_event(thread_id, event, idempotency_key=key)

    status_line(run(store, [], work))


def cancel(
    thread_id: str,
    reason: Annotated[str, typer.Option(help="Why, for the log.")] = "cancelled",
    store: StoreOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """End a thread for good (`failed` with the reason); nothing runs after it."""

    async def work(runtime: Runtime) -> Thread:
        await load(runtime, thread_id)
        return await runtime.cancel(thread_id, reason, idempotency_key=key)

    status_line(run(store, [], work))


async def _decided(
    runtime: Runtime,
    thread_id: str,
    key: str | None,
    answer: str,
    call_id: str | None,
    decide: Callable[[str], Awaitable[Thread]],
    check: Callable[[Thread, str], None] | None = None,
) -> Thread:
    """Deliver a decision on `call_id` (the pending one by default) once: a repeat of `key` answers as before.

    `check(thread, pending)` may refuse the decision before anything is recorded.
    """
    repeat = await _repeat(runtime, thread_id, key, answer, call_id, decide)
    if repeat is not None:
        return repeat
    thread = await load(runtime, thread_id)
    pending = call_id or _pending(thread)
    if check is not None:
        check(thread, pending)
    return await decide(pending)


async def _repeat(
    runtime: Runtime,
    thread_id: str,
    key: str | None,
    answer: str,
    answered: str | None,
    decide: Callable[[str], Awaitable[Thread]],
) -> Thread | None:
    """The thread, when `key` delivered this same decision before; None when the key is new to the thread.

    A repeat of a delivery that went through finds the thread moved on: no pending call to name any
    more. So the decision is tried, with the key, on each call (`answered`, or each one a person
    decided before): the runtime changes nothing for the request the key carried, and raises
    `IdempotencyKeyReused` for any other. A key belongs to its thread (another thread's is no repeat).

    Raises:
        IdempotencyKeyReused: The key delivered something else to this thread.
    """
    if key is None or await (await runtime.store()).find_key(key, scope=f"thread:{thread_id}") is None:
        return None
    field = ANSWERS[answer][0]
    if answered is not None:
        candidates = [answered]
    else:
        events = (await load(runtime, thread_id)).events
        candidates = [str(e.data.get(field)) for e in events if e.type == answer and isinstance(e.data, dict)]
    reused = IdempotencyKeyReused(key, thread_id=thread_id)
    for candidate in candidates:
        # The key is stored, so none of these calls writes: each returns the thread or refuses.
        try:
            return await decide(candidate)
        except IdempotencyKeyReused as exc:
            reused = exc
    raise reused


def _pending(thread: Thread) -> str:
    if thread.pending is None:
        raise ThreadloomError(f"thread {thread.id!r} is {thread.status!r}: nothing waits for a person")
    return thread.pending.id


def _edits(items: list[str]) -> dict[str, JsonValue]:
    edits: dict[str, JsonValue] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--edit takes key=value, got {item!r}")
        try:
            edits[name] = json.loads(value)
        except ValueError:
            edits[name] = value  # a bare word is a string
    return edits
