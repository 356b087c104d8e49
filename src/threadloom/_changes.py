"""What people and systems write to threads: a launch, a decision or an outside event, applied once.

Each write names the version it extends; a writer that loses the race to another reloads and tries
again, so no decision is lost and none is applied twice. An idempotency key makes a repeated delivery
(a retried webhook, a double click) a no-op: a launch's key belongs to its agent, any other to its
thread, and the same key with another request raises `IdempotencyKeyReused`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from pydantic import JsonValue, ValidationError

from ._limits import contention_pause, fingerprint
from ._type_names import type_name
from .agent import Agent
from .events import WAKE_UP, Event, id_problem, is_bookkeeping
from .exceptions import (
    AlreadyDelivered,
    InvalidTransition,
    NotStorable,
    ThreadBusy,
    ThreadloomError,
    UserError,
    VersionConflict,
)
from .state import FAILED
from .store import ThreadStore
from .thread import Thread

__all__ = ["RETRIES", "append_event", "approve", "cancel", "change", "launch", "reject", "respond", "wake"]

RETRIES = 20
"""Writes lost to other writers before giving up."""


async def launch(
    store: ThreadStore,
    agent: str,
    event: Event,
    *,
    thread_id: str | None,
    idempotency_key: str | None,
    metadata: Mapping[str, JsonValue] | None,
) -> str:
    """Store a new thread for `agent` that starts with `event`, once per idempotency key (see `Runtime.launch`)."""
    if problem := id_problem(agent, "agent name") or _key_problem(idempotency_key):
        raise UserError(f"cannot launch: {problem}")
    meta: dict[str, JsonValue] = {**(metadata or {}), "agent": agent}
    request = fingerprint("launch", agent, event.type, event.data, thread_id, meta)
    if idempotency_key is not None:
        existing = await store.find_key(idempotency_key, scope=f"launch:{agent}", request=request)
        if existing is not None:
            return existing
    thread = Thread([event], thread_id=thread_id, metadata=meta)
    try:
        await store.append(thread, after=0, idempotency_key=idempotency_key, request=request)
    except AlreadyDelivered as exc:
        return exc.thread_id
    except NotStorable as exc:
        raise UserError(f"cannot launch {agent!r}: {exc}") from exc
    return thread.id


async def change(
    store: ThreadStore, thread_id: str, change: Callable[[Thread], Thread], key: str | None, request: str
) -> Thread:
    """Apply `change` to the latest version, retrying (with backoff) when another writer got there first.

    A key belongs to the thread: `find_key` and the append raise `IdempotencyKeyReused` for a
    key this thread saw with another request.
    """
    if problem := _key_problem(key):
        raise UserError(problem)
    scope = f"thread:{thread_id}"
    for attempt in range(RETRIES):
        if key is not None and await store.find_key(key, scope=scope, request=request) is not None:
            return await store.load(thread_id)  # delivered before: the same call has no second effect
        thread = await store.load(thread_id)
        try:
            changed = change(thread)
        except InvalidTransition:
            if key is not None and await store.find_key(key, scope=scope, request=request) is not None:
                return await store.load(thread_id)  # the same delivery won a race a moment ago
            raise
        try:
            await store.append(changed, after=len(thread), idempotency_key=key, request=request)
        except VersionConflict:
            await contention_pause(attempt)
            continue
        except AlreadyDelivered:
            return await store.load(thread_id)
        except NotStorable as exc:
            raise UserError(str(exc)) from exc
        return changed
    raise ThreadloomError(f"thread {thread_id!r} kept changing under {RETRIES} attempts to write to it")


MAX_KEY_LENGTH = 400
"""The longest idempotency key: with its scope it fits PostgreSQL's index row at four bytes a character."""


def _key_problem(key: str | None) -> str | None:
    """Why `key` cannot be an idempotency key every store keeps, or None if it can."""
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH:
        return f"idempotency key {key[:40]!r} is {len(key)} characters; from 1 to {MAX_KEY_LENGTH}"
    if "\x00" in key:
        return f"idempotency key {key!r} holds a NUL character, which a store's text cannot hold"
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return f"idempotency key {key!r} holds a lone surrogate, which UTF-8 cannot encode"
    return None


async def approve(
    store: ThreadStore,
    agents: Mapping[str, Agent],
    thread_id: str,
    call_id: str,
    edits: Mapping[str, JsonValue] | None,
    *,
    key: str | None,
    by: str | None,
) -> Thread:
    """Approve the pending call, with `edits` checked against its tool where `agents` has it (see `Runtime.approve`)."""

    def approve(thread: Thread) -> Thread:
        _check_edits(agents.get(str(thread.metadata.get("agent"))), thread, call_id, edits or {})
        return thread.approve(call_id, edits, by=by)

    return await change(store, thread_id, approve, key, fingerprint("approve", call_id, dict(edits or {})))


async def reject(
    store: ThreadStore, thread_id: str, call_id: str, feedback: str, *, key: str | None, by: str | None
) -> Thread:
    """Reject the pending call (see `Runtime.reject`)."""
    request = fingerprint("reject", call_id, feedback)
    return await change(store, thread_id, lambda t: t.reject(call_id, feedback, by=by), key, request)


async def respond(
    store: ThreadStore, thread_id: str, request_id: str, text: str, *, key: str | None, by: str | None
) -> Thread:
    """Answer the pending human request (see `Runtime.respond`); `Thread.respond` checks a choice."""
    request = fingerprint("respond", request_id, text)
    return await change(store, thread_id, lambda t: t.respond(request_id, text, by=by), key, request)


async def append_event(
    store: ThreadStore, thread_id: str, event: Event, key: str | None, *, patience: float = 30.0
) -> Thread:
    """Append an outside event to the latest version, after any running tool's result (see `Runtime.send_event`)."""
    request = fingerprint("send_event", event.type, event.data)
    waits = not is_bookkeeping(event.type)

    def append(thread: Thread) -> Thread:
        if waits and _tool_running(thread):
            raise _ToolRunning
        return thread.append(event)

    started = time.monotonic()
    for attempt in itertools.count():
        try:
            return await change(store, thread_id, append, key, request)
        except _ToolRunning:
            waited = time.monotonic() - started
            if waited >= patience:
                raise ThreadBusy(thread_id, waited=waited) from None
            # The run saves the result without telling anyone: look again, less often as it goes on.
            await asyncio.sleep(min(0.5, 0.01 * 2**attempt, max(0.0, patience - waited)))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


class _ToolRunning(Exception):
    """`append_event`'s change found a tool running: nothing is written yet."""


def _tool_running(thread: Thread) -> bool:
    """A call of the thread has started and its result is not saved (a worker runs it, or died in it)."""
    running = thread.state.runnable
    return thread.status == "ready" and running is not None and running.started is not None


async def wake(store: ThreadStore, thread_id: str, now: datetime, key: str) -> Thread | None:
    """Append `wake_up` if the thread still sleeps with its time come; None when it moved on since it was listed."""

    def woken(thread: Thread) -> Thread:
        wake_at = thread.state.wake_at
        if thread.status != "sleeping" or wake_at is None or wake_at > now:
            raise _NotDue  # woken by something else, answered, or put back to sleep
        return thread.append(Event(WAKE_UP, {"wake_at": wake_at.isoformat()}))

    try:
        return await change(store, thread_id, woken, key, fingerprint("wake", thread_id))
    except _NotDue:
        return None


class _NotDue(Exception):
    """`wake`'s change found the thread not due: nothing is written."""


async def cancel(store: ThreadStore, thread_id: str, reason: str, key: str | None) -> Thread:
    """Append `failed` with the reason (see `Runtime.cancel`); a thread that has ended is refused."""
    failed = Event(FAILED, {"reason": reason})

    def cancel(thread: Thread) -> Thread:
        # Another `failed` would end it twice in its log; `change` still replays a delivered key.
        if thread.status in ("done", "failed"):
            message = f"cannot cancel thread {thread_id!r}: it is {thread.status!r}, it has ended"
            raise InvalidTransition(message, thread_id=thread_id)
        return thread.append(failed)

    return await change(store, thread_id, cancel, key, fingerprint("cancel", reason))


def _check_edits(agent: Agent | None, thread: Thread, call_id: str, edits: Mapping[str, JsonValue]) -> None:
    """Refuse edits under which the pending call's arguments no longer fit its tool (when `agent` is known)."""
    pending = thread.pending
    if pending is None or pending.id != call_id or agent is None or not isinstance(pending.data, dict):
        return  # `Thread.approve` says what is wrong, or no tool is known here to check against
    tool = agent.tools.get(str(pending.data.get("intent")))
    arguments = pending.data.get("arguments")
    if tool is None or not isinstance(arguments, dict):
        return
    fields = tool.arguments.model_fields
    listing = ", ".join(f"{name}: {type_name(info.annotation)}" for name, info in fields.items()) or "none"
    unknown = sorted(set(edits) - set(fields))
    if unknown:
        raise UserError(f"tool {tool.name!r} has no parameter {unknown[0]!r}; its parameters: {listing}")
    try:
        tool.arguments.model_validate({**arguments, **edits})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UserError(f"edits do not fit tool {tool.name!r} ({problems}); its parameters: {listing}") from None
