"""The `ThreadStore` protocol: the append-only thread is the durable log (DESIGN.md)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol, get_args

from ..events import APPROVAL, ERROR, HUMAN_RESPONSE, REQUEST_HUMAN_INPUT, REQUEST_MORE_INFORMATION, TOOL_CALL
from ..exceptions import UserError
from ..state import Status, Usage
from ..thread import Thread

__all__ = [
    "ANSWERS",
    "REQUESTS",
    "STATUSES",
    "StoreCounts",
    "ThreadStore",
    "ThreadSummary",
    "check_listing",
    "count_threads",
    "masked",
    "masked_url",
]


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """What the runtime queries about a thread without loading its events (one row of `threads`)."""

    thread_id: str
    """The thread's id."""
    status: Status
    """The thread's status after its last append (`Thread.status` of the stored events)."""
    agent: str | None
    """The agent that runs it (`metadata["agent"]`)."""
    parent_id: str | None
    """The thread it was forked from (`metadata["forked_from"]`)."""
    events: int
    """How many events it has: the version the next append extends."""
    updated_at: datetime
    """When its last event was appended (UTC)."""
    wake_at: datetime | None = None
    """When a sleeping thread is due (durable waits)."""
    retry_at: datetime | None = None
    """When a thread whose last run failed may run again (its last event is a `run_error`); no claim before."""
    unreadable: str | None = None
    """Why the thread was set aside as unreadable (`ThreadStore.set_aside`); no claim takes it."""


STATUSES: Final[tuple[Status, ...]] = get_args(Status)
"""Every status, in the order `Status` lists them."""
REQUESTS: Final = frozenset({REQUEST_HUMAN_INPUT, REQUEST_MORE_INFORMATION})
"""The event types a `human_response` answers (its `request_id` names one)."""
ANSWERS: Final = {APPROVAL: ("call_id", frozenset({TOOL_CALL})), HUMAN_RESPONSE: ("request_id", REQUESTS)}
"""A person's answer, by its type: the data key naming what it answers, and the types that may be."""


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """Totals over every thread of a store (`ThreadStore.counts`): what a server's `/metrics` reports.

    Every store computes them the way `count_threads` defines them, in the database where it has one.
    """

    threads: Mapping[Status, int]
    """How many threads have each status; every status is a key, with 0 when none has it."""
    usage: Mapping[str, Usage]
    """Model calls and their tokens by model name: the sum of every thread's `usage_by_model`.
    `Usage.requests` counts the model steps."""
    tool_errors: int
    """Tool runs that ended in an error (`error` events with `source: tool`)."""
    answered: int
    """Requests a person answered: decisions on a call waiting for approval, answers to a human request."""
    waited_seconds: float
    """How long those requests waited, in all: from the request's event to its answer's."""


def check_listing(limit: int, updated_after: datetime | None, before: tuple[datetime, str] | None) -> None:
    """Refuse `list` arguments the stores would read three ways: a negative limit, a time without a timezone."""
    if limit < 0:
        raise UserError(f"list: limit must be 0 or more, not {limit}")
    for name, moment in (("updated_after", updated_after), ("before", before[0] if before else None)):
        if moment is not None and moment.utcoffset() is None:
            raise UserError(f"list: {name} must have a timezone (datetime.now(UTC), not datetime.now())")


def count_threads(threads: Iterable[Thread]) -> StoreCounts:
    """The definition of `StoreCounts` over these threads (the memory store's; the others compute the same in SQL)."""
    statuses = dict.fromkeys(STATUSES, 0)
    usage: dict[str, Usage] = {}
    tool_errors = answered = 0
    waited = 0.0
    for thread in threads:
        statuses[thread.status] += 1
        for model, used in thread.usage_by_model.items():
            usage[model] = usage[model] + used if model in usage else used
        asked = {e.id: e for e in thread.events if e.type == TOOL_CALL or e.type in REQUESTS}
        for event in thread.events:
            data = event.data if isinstance(event.data, dict) else {}
            if event.type == ERROR and data.get("source") == "tool":
                tool_errors += 1
            elif event.type in ANSWERS:
                key, types = ANSWERS[event.type]
                request = asked.get(str(data.get(key)))
                if request is not None and request.type in types:
                    answered += 1
                    waited += (event.at - request.at).total_seconds()
    return StoreCounts(statuses, usage, tool_errors, answered, waited)


# `user:password@`: the password runs to the last `@` of the URL, since one left unencoded may hold
# `/`, `?`, `#` or `@` (a generated one often does), and no part of it may be printed.
_URL_PASSWORD = re.compile(r"(://[^/@:?#\s]*:)(\S*)@")
_PARAM_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|[^&\s]*)", re.IGNORECASE)
_RESERVED = re.compile(r"[/?#@]")  # what ends a URL's password unless percent-encoded
_PIECE = 4  # pieces of a password split at those this long are masked too (a driver quotes a piece)


def masked_url(url: str) -> str:
    """A store URL fit to print: its password (`user:secret@`, `password=secret`) shown as `***`."""
    return _PARAM_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", url))


def masked(text: str, url: str) -> str:
    """`text` (an error message, which may quote the URL) with every copy of the URL's password masked.

    A copy is masked where it is not part of a longer word (`postgres` as a password leaves the
    scheme `postgresql://` as it is); so is each piece of a password that an unencoded `/`, `?`,
    `#` or `@` splits, since the driver then quotes a piece of it as a host or a port.
    """
    secrets = [m.group(2) for m in _URL_PASSWORD.finditer(url)] + [m.group(2) for m in _PARAM_PASSWORD.finditer(url)]
    for secret in filter(None, (s.strip("'") for s in secrets)):
        pieces = [p for p in _RESERVED.split(secret) if len(p) >= _PIECE] if _RESERVED.search(secret) else []
        for piece in sorted({secret, *pieces}, key=len, reverse=True):
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(piece)}(?![A-Za-z0-9])", "***", text)
    return masked_url(text)


def unencoded_password(url: str) -> bool:
    """Whether the URL's password holds a `/`, `?`, `#` or `@` that percent-encoding should have written."""
    return any(_RESERVED.search(m.group(2)) for m in _URL_PASSWORD.finditer(url))


class ThreadStore(Protocol):
    """Where threads live between steps. Appends are optimistic: each names the version it extends.

    Implementations: `MemoryStore` (`memory://`), `SQLiteStore` (`sqlite:///path.db`), and
    `PostgresStore` (`postgresql://...`, extra `postgres`); `open_store(url)` picks one.
    """

    async def append(
        self,
        thread: Thread,
        *,
        after: int,
        idempotency_key: str | None = None,
        request: str | None = None,
        owner: str | None = None,
        sync: bool = True,
    ) -> None:
        """Write `thread.events[after:]`, and the thread's summary, in one transaction.

        Args:
            thread: The thread as the writer has it; only the events after `after` are written.
            after: The event count the writer read (0 creates the thread).
            idempotency_key: A key for this delivery; a key seen before in its scope (`key_scope`:
                the thread, or a launch's agent) writes nothing.
            request: What the key delivers (a fingerprint of the call): a key seen before with
                another request raises `IdempotencyKeyReused` instead of `AlreadyDelivered`.
            owner: The worker appending under its lease: the append is refused unless the lease is
                still `owner`'s (a fencing check in the append's own transaction).
            sync: False lets the append return before it is on disk: it is committed (every reader
                sees it, a crash of the process keeps it), and the store's next synced commit, which
                waits for everything written before it, makes it durable; a power cut before then
                may lose it. The runtime passes False only for a tool's result that its run goes on
                from (see `threadloom._saving`). SQLite with `synchronous="FULL"` skips that
                commit's disk sync; the other stores always sync as they are configured to.

        Raises:
            VersionConflict: The stored thread does not have exactly `after` events (or exists, for 0).
            AlreadyDelivered: `idempotency_key` was used before in its scope, for the same request.
            IdempotencyKeyReused: `idempotency_key` was used before in its scope, for another request.
            ThreadNotFound: `after` > 0 and there is no such thread.
            LeaseLost: `owner` was given and another worker holds (or held) the lease since.
            NotStorable: A value the store cannot encode; nothing was written.
        """
        ...

    async def load(self, thread_id: str) -> Thread:
        """The thread with all its events.

        Raises:
            ThreadNotFound: No thread has this id.
            ThreadDecodeError: A stored row cannot be read; the error names the thread and the event.
        """
        ...

    async def list(
        self,
        *,
        status: Status | None = None,
        agent: str | None = None,
        updated_after: datetime | None = None,
        wake_before: datetime | None = None,
        before: tuple[datetime, str] | None = None,
        newest_first: bool = False,
        limit: int = 100,
    ) -> list[ThreadSummary]:
        """Summaries of matching threads, least recently updated first (ties by thread id).

        Args:
            status: Only threads with this status.
            agent: Only threads of this agent.
            updated_after: Only threads appended to after this time.
            wake_before: Only threads with a `wake_at` at or before this time (due sleepers).
            before: Only threads whose `(updated_at, thread_id)` sorts before this pair: the
                cursor of a page, the last summary of the page before it.
            newest_first: Most recently updated first.
            limit: At most this many.
        """
        ...

    async def counts(self) -> StoreCounts:
        """Totals over every thread: threads by status, model usage, tool errors, people's answers.

        Threads by status read the thread rows only; the rest reads the event rows of the types
        they count (model answers, errors, decisions), so it costs a scan of the log.
        """
        ...

    async def find_key(
        self, idempotency_key: str, *, scope: str | None = None, request: str | None = None
    ) -> str | None:
        """The thread an idempotency key was delivered to, or None.

        Args:
            idempotency_key: The key.
            scope: Where to look (`key_scope`); None looks in every scope.
            request: What the caller means to deliver with it: if the key was used for another
                request, `IdempotencyKeyReused` is raised.
        """
        ...

    async def claim(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[str]:
        """Lease up to `limit` runnable threads to `owner`, oldest first.

        Runnable: `ready`, no live lease, not set aside as unreadable, its `retry_at` (if any) come,
        and, when `agents` is given, run by one of them: a claim skips what the claimer cannot run
        now, so such threads never crowd out the rest.

        Returns:
            The ids of the threads now leased to `owner` until `lease_seconds` from now.
        """
        ...

    async def claim_threads(
        self, owner: str, *, lease_seconds: float, limit: int, agents: Collection[str] | None = None
    ) -> list[Thread]:
        """`claim`, returning the claimed threads with their events: what a worker runs next.

        A thread may be a moment older than the stored one (another writer appended right after the
        claim): the run's first append then conflicts and the run goes on from the stored thread.

        Returns:
            The threads now leased to `owner` until `lease_seconds` from now.

        Raises:
            ThreadDecodeError: A claimed thread cannot be read. The others claimed with it are
                released; the caller sets it aside (`set_aside`) and claims again.
        """
        ...

    async def set_aside(self, thread_id: str, reason: str) -> None:
        """Mark a thread unreadable (`ThreadSummary.unreadable`), ending any lease: no claim takes it again."""
        ...

    async def renew(self, thread_id: str, owner: str, *, lease_seconds: float) -> bool:
        """Extend `owner`'s lease; True while the thread is still `owner`'s, False once it may not be.

        One contract on every store: True when `owner` holds a live lease (now `lease_seconds`
        longer), and when `owner`'s own append stopped the thread and no other worker has claimed
        it since (a renewal racing the end of a run is no lost lease; a store may have ended that
        lease's time, and renewing it changes nothing). False once the lease expired, was released
        or was taken.
        """
        ...

    async def release(self, thread_id: str, owner: str) -> None:
        """Give up `owner`'s lease on the thread (nothing happens if `owner` does not hold it)."""
        ...

    async def wait_for_work(self, seconds: float) -> None:
        """Return when a thread may have become claimable (`ready` and not leased), or after `seconds`.

        Workers call it between looks for work. It may return early; it must not miss work that
        became claimable after a previous call returned. PostgreSQL wakes every worker on every
        machine with LISTEN/NOTIFY; SQLite and memory wake on appends made in this process, and
        otherwise after `seconds` (polling).
        """
        ...

    async def aclose(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...
