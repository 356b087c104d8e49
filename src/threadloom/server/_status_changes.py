"""What a webhook reports: the changes of a thread's status to one a subscription hears about, read from its log.

A change is found from the events, not from the status a thread has when someone looks: a thread
that waited for approval for a millisecond (approved at once) still waited, and its log says so.
Each change is named by the event that made it (the pending call or request for `waiting_*`, the
final event for `done` and `failed`), so the same change seen twice, by two scans or two server
processes, is the same delivery, and an event that changes nothing (bookkeeping) is no change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import JsonValue

from ..events import Event
from ..state import Status, ThreadState, advance
from ..thread import Thread
from ._config import ServerConfig, Subscription
from ._links import answer_url
from ._redaction import Redaction
from .tables import Delivery

__all__ = ["Change", "body", "changes", "deliveries", "delivery_id", "first_read"]


@dataclass(frozen=True, slots=True)
class Change:
    """A thread reaching a status: `event` (the `position`-th, from 0) is the one that brought it there."""

    status: Status
    """The status reached."""
    event: Event
    """The event that made the change: the pending call or request, or the event that ended the thread."""
    position: int
    """Where `event` is in the thread."""


def changes(thread: Thread, *, since: datetime | None = None) -> Iterator[Change]:
    """Every change of status in the thread's log, oldest first; with `since`, those made by events at or after it.

    A change is a new status, or a new pending request in the same waiting status (a second
    approval asked for without the thread running in between).
    """
    state = ThreadState()
    for position, event in enumerate(thread.events):
        after = advance(state, event)
        moved = after.status != state.status or (
            after.pending is not None and (state.pending is None or after.pending.id != state.pending.id)
        )
        if moved and (since is None or event.at >= since):
            yield Change(after.status, event, position)
        state = after


def first_read(thread: Thread, since: datetime) -> list[Change]:
    """The changes of a thread never read before: those made by events at or after `since`, and a fork's first status.

    A fork copies its parent's events with their times: the status its copy rests on (waiting for
    the call it was forked at) is one it reaches when it is made, however old that event.
    """
    found = list(changes(thread, since=since))
    forked_at = thread.metadata.get("forked_at")
    end = next((i for i, e in enumerate(thread.events) if e.id == forked_at), None) if forked_at else None
    copied = [change for change in changes(thread) if end is not None and change.position <= end]
    if copied and copied[-1] not in found:
        found = sorted([copied[-1], *found], key=lambda change: change.position)
    return found


def delivery_id(subscription: Subscription, thread_id: str, change: Change) -> str:
    """The delivery's id (its `webhook-id`): the same for the same subscription, thread and change, in any process."""
    named = "\n".join((subscription.url, thread_id, change.status, change.event.id))
    return "msg_" + hashlib.sha256(named.encode()).hexdigest()[:32]


def body(config: ServerConfig, thread: Thread, change: Change) -> str:
    """The JSON a subscriber gets: `{type, thread_id, agent, status, pending?, answer_url?, at}`.

    `pending` and `answer_url` (the link that answers without an API key) come with `waiting_*`;
    the pending request's data shows its secrets as `[REDACTED]`, as the API's reads do.
    """
    message: dict[str, JsonValue] = {
        "type": f"thread.{change.status}",
        "thread_id": thread.id,
        "agent": thread.metadata.get("agent"),
        "status": change.status,
    }
    if change.status in ("waiting_approval", "waiting_human"):
        then = Thread(thread.events[: change.position + 1], thread_id=thread.id, metadata=thread.metadata)
        if then.pending is not None:
            pending = then.pending
            message["pending"] = {
                "id": pending.id,
                "type": pending.type,
                # Redacted with what the whole thread knows: a receiver is no more trusted than a read key.
                "data": Redaction.of(config.runtime, thread).event_data(pending),
                "at": pending.at.isoformat(),
            }
            message["answer_url"] = answer_url(config.public_url, config.secret, then, config.answer_ttl)
    message["at"] = change.event.at.isoformat()
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def deliveries(
    config: ServerConfig,
    subscriptions: Sequence[Subscription],
    thread: Thread,
    found: Sequence[Change],
    *,
    skip: Collection[str] = (),
) -> list[Delivery]:
    """A delivery per subscription that hears about each change, but none whose id is in `skip`."""
    made: list[Delivery] = []
    for change in found:
        text: str | None = None  # the body is the same for every subscriber: made once
        for subscription in subscriptions:
            if change.status not in subscription.statuses:
                continue
            named = delivery_id(subscription, thread.id, change)
            if named not in skip:
                text = text or body(config, thread, change)
                made.append(Delivery(named, subscription.url, text, change.event.at))
    return made
