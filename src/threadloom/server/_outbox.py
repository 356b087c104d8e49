"""Outbound webhooks: every change a subscription hears about is queued in the outbox, then POSTed, signed, until it gets through.

Two loops run beside the requests (`create_app`'s lifespan starts `deliver`):

- the scan reads the threads changed since its watermark (`runtime.list(updated_after=...)`),
  finds their changes in their logs (`_status_changes`) and queues a delivery per subscription and
  change. It depends on no process telling it anything: a change made by a worker in another
  process (`threadloom serve --no-worker`) is found the same way. Delivery ids are derived from
  the change, so a rescan, or a second server scanning the same store, queues nothing twice; the
  watermark is kept in the settings table, written only after what it covers is queued, so a
  restart rescans from there and loses nothing. How far each thread's log has been read is kept
  there too (`webhook_read:<thread id>`), so a thread's next read reports every change after
  that, however long it ran, unlisted (`ready`), in between. Those settings are never deleted:
  the store deletes no thread, and nothing else it keeps tells a thread whose setting went from
  one never read (a fork's copied events keep their times); `test_outbox_reads` pins what a
  prune must keep.
- the sender claims due deliveries with a lease (two servers never send one at once), signs each
  attempt anew (Standard Webhooks: `webhook-id` is the delivery's id, the same on every retry),
  and retries failures with exponential backoff, capped, for up to three days. Each attempt runs
  on its own, bounded as a whole (a receiver trickling its answer is a failed attempt), so a
  slow receiver holds up no other delivery.

Delivery is at least once: a receiver that answered 2xx just as this process died gets the message
again, with the same `webhook-id`, after the lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import get_args
from urllib.parse import urlsplit

import httpx

from .. import __version__
from ..exceptions import StoreError, ThreadDecodeError, ThreadloomError, ThreadNotFound, UserError
from ..state import Status
from ..store import ThreadSummary
from ._config import ServerConfig, Subscription
from ._signing import sign
from ._status_changes import changes, deliveries, delivery_id, first_read
from .tables import Delivery, Tables, open_tables

__all__ = ["ORIGIN", "WATERMARK", "Backoff", "deliver", "where"]

log = logging.getLogger("threadloom.server.webhooks")

WATERMARK = "webhook_watermark"
"""The setting that holds when the last complete scan began (ISO 8601, UTC)."""
ORIGIN = "webhook_origin"
"""The setting that holds when the first scan ever began: of a thread never read, changes from then on count."""

_OVERLAP = timedelta(minutes=1)  # a scan re-reads this far before its watermark: appends committed late
_SLACK = timedelta(minutes=10)  # of a thread never read, changes this much older than ORIGIN still count
_KEEP = timedelta(days=7)  # delivered and given-up deliveries are deleted after this
_SAVE_EVERY = timedelta(seconds=30)  # the watermark is written at most this often (a restart rescans the rest)
_PAGE = 500  # summaries per list call
_BATCH = 16  # attempts in flight at once, at most
_LEASE_SECONDS = 60.0  # at least; always well past an attempt's bound
# Where a thread rests (all but `ready`, which a worker is about to run or runs): a scan lists these.
_RESTING: tuple[Status, ...] = tuple(s for s in get_args(Status) if s != "ready")


@dataclass(frozen=True, slots=True)
class Backoff:
    """When a failed delivery is tried again: `first` seconds, doubling, at most `cap`, until `give_up_after`."""

    first: float = 1.0
    """Seconds before the second attempt."""
    cap: float = 1800.0
    """The longest wait between two attempts."""
    give_up_after: timedelta = timedelta(days=3)
    """A delivery still failing this long after its change is given up (kept, with its last error)."""

    def retry_at(self, delivery: Delivery, now: datetime, *, retry_after: float | None = None) -> datetime | None:
        """When to try `delivery` again after its attempt number `delivery.attempts + 1` failed; None: give up.

        Each wait is drawn from its upper three quarters (jitter: many deliveries that failed
        together, when a receiver went down, do not all come back at once). A receiver's
        `Retry-After` can make the wait longer, never shorter, and never longer than `cap`.
        """
        wait = min(self.cap, self.first * 2.0**delivery.attempts) * random.uniform(0.75, 1.0)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap))
        then = now + timedelta(seconds=wait)
        return None if then - delivery.at > self.give_up_after else then


def where(url: str) -> str:
    """A subscriber's URL as logs show it: scheme, host and port (paths and queries may hold tokens)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/..."


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    return None


async def deliver(
    config: ServerConfig,
    stop: asyncio.Event,
    *,
    poll_seconds: float = 1.0,
    backoff: Backoff | None = None,
    attempt_seconds: float = 10.0,
) -> None:
    """Queue and send webhooks for `config.subscriptions` until `stop` is set.

    A store that cannot be reached is logged and tried again; the attempts in flight when `stop`
    is set finish (or time out) first, so none is cut off half sent.

    Args:
        config: The server: its runtime (whose store holds the outbox) and subscriptions.
        stop: Set to end.
        poll_seconds: How often to look for changes and due deliveries.
        backoff: When failed deliveries are retried.
        attempt_seconds: How long one attempt may take in all, from connecting to the answer's status.
    """
    subscriptions = _usable(config.subscriptions)
    if not subscriptions:
        await stop.wait()
        return
    # The server's tables when it has them (the app closes those), else tables of the outbox's own.
    tables = config.tables or await _open(config, stop, poll_seconds)
    if tables is None:
        return
    outbox = _Outbox(config, subscriptions, tables, backoff or Backoff(), attempt_seconds)
    timeout = httpx.Timeout(attempt_seconds)  # bounds each read; `_attempt` bounds the whole
    try:
        # Left in reverse: the loops end at `stop`, then the attempts in flight, then the client.
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            asyncio.TaskGroup() as attempts,
            asyncio.TaskGroup() as jobs,
        ):
            jobs.create_task(_every(poll_seconds, stop, outbox.scan))
            jobs.create_task(_every(poll_seconds, stop, lambda: outbox.send(client, stop, attempts)))
    finally:
        if tables is not config.tables:
            await tables.aclose()


def _usable(subscriptions: tuple[Subscription, ...]) -> tuple[Subscription, ...]:
    """The subscriptions whose secret can sign; each other one is logged (by its host, never its secret) and left out."""
    usable: list[Subscription] = []
    for subscription in subscriptions:
        try:
            sign(subscription.secret, b"", msg_id="check")
        except UserError as exc:
            log.error("webhooks to %s are off: %s", where(subscription.url), exc)
        else:
            usable.append(subscription)
    return tuple(usable)


async def _open(config: ServerConfig, stop: asyncio.Event, poll_seconds: float) -> Tables | None:
    """The outbox's tables, beside the runtime's store, once they open; None if `stop` came first."""
    while not stop.is_set():
        try:
            return await open_tables(await config.runtime.store())
        except ThreadloomError as exc:
            log.warning("webhooks wait for the store: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(poll_seconds, 1.0))
    return None


async def _every(seconds: float, stop: asyncio.Event, work: Callable[[], Awaitable[bool]]) -> None:
    """`work()` until `stop`, again at once while it says there is more, else after `seconds`."""
    while not stop.is_set():
        more = False
        try:
            more = await work()
        except StoreError as exc:  # the store went away for a moment: the next round tries again
            log.warning("webhooks: %s", exc)
        except Exception:  # a bug: said loudly, and the next round tries again rather than no webhook ever
            log.exception("webhooks failed; trying again")
        if not more:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)


class _Outbox:
    def __init__(
        self,
        config: ServerConfig,
        subscriptions: tuple[Subscription, ...],
        tables: Tables,
        backoff: Backoff,
        attempt_seconds: float,
    ) -> None:
        self.config = config
        self.tables = tables
        self.backoff = backoff
        self.attempt_seconds = attempt_seconds
        self.lease_seconds = max(_LEASE_SECONDS, 3 * attempt_seconds)  # no claim takes a delivery mid-attempt
        self.in_flight: set[str] = set()  # ids of the deliveries being attempted
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.by_url = {s.url: s for s in subscriptions}
        self.subscriptions = subscriptions
        self.watermark: datetime | None = None  # when the last complete scan began
        self.origin = datetime.min.replace(tzinfo=UTC)  # ORIGIN, once the first scan read it
        self.saved: datetime | None = None  # the watermark as last written
        self.seen: dict[str, tuple[int, datetime]] = {}  # thread -> (events looked at, its updated_at)
        self.pruned = datetime.min.replace(tzinfo=UTC)

    async def scan(self) -> bool:
        """Queue the changes of every thread changed since the watermark; then move the watermark."""
        began = datetime.now(UTC)
        if self.watermark is None:
            stored = await self.tables.get_setting(WATERMARK)
            # The first scan ever begins now: a new subscription hears of changes from its start on.
            self.saved = datetime.fromisoformat(stored) if stored else None
            self.watermark = self.saved or began
            # A store that kept only a watermark (from before ORIGIN) begins where it was.
            self.origin = datetime.fromisoformat(await self.tables.add_setting(ORIGIN, self.watermark.isoformat()))
        since = self.watermark - _OVERLAP
        # Threads that rest (the status index finds them): one that passed through a status someone
        # hears about (approved at once) is read when it next rests, its log holding every change.
        for status in _RESTING:
            cursor = since
            while True:
                page = await self.config.runtime.list(status=status, updated_after=cursor, limit=_PAGE)
                for summary in page:
                    await self._look_at(summary)
                if len(page) < _PAGE:
                    break
                # Ties at the page's end are read again (the next page starts a microsecond
                # before it); `seen` skips what was read.
                following = page[-1].updated_at - timedelta(microseconds=1)
                cursor = following if following > cursor else page[-1].updated_at
        self.watermark = began
        self.seen = {t: s for t, s in self.seen.items() if s[1] > since}
        if self.saved is None or began - self.saved >= _SAVE_EVERY:
            await self.tables.put_setting(WATERMARK, began.isoformat())
            self.saved = began
        if began - self.pruned > timedelta(hours=1):
            await self.tables.prune(began - _KEEP)
            self.pruned = began
        return False

    async def _look_at(self, summary: ThreadSummary) -> None:
        seen = self.seen.get(summary.thread_id)
        if seen is not None and seen[0] == summary.events:
            return
        try:
            thread = await self.config.runtime.get(summary.thread_id)
        except (ThreadNotFound, ThreadDecodeError) as exc:
            log.warning("webhooks skip thread %r: %s", summary.thread_id, exc)
        else:
            # The changes after what was read of it before; of a thread never read, those since ORIGIN
            # (and a fork's first status).
            name = f"webhook_read:{thread.id}"
            read = await self.tables.get_setting(name)
            start = 0 if read is None else int(read)
            if read is None:
                found = first_read(thread, self.origin - _SLACK)
            else:
                found = [change for change in changes(thread) if change.position >= start]
            ids = [
                delivery_id(s, thread.id, change)
                for change in found
                for s in self.subscriptions
                if change.status in s.statuses
            ]
            known: set[str] = await self.tables.known(ids) if ids else set()
            new = deliveries(self.config, self.subscriptions, thread, found, skip=known)
            if new and await self.tables.queue(new):
                log.debug("webhooks queued %d for thread %r", len(new), thread.id)
            if len(thread) > start:  # written after the queue: a crash between rereads, and `known` skips
                await self.tables.put_setting(name, str(len(thread)))
        self.seen[summary.thread_id] = (summary.events, summary.updated_at)

    async def send(self, client: httpx.AsyncClient, stop: asyncio.Event, attempts: asyncio.TaskGroup) -> bool:
        """Start an attempt of each due delivery, up to `_BATCH` in flight; whether there may be more due at once.

        Each attempt is a task of its own, not awaited here: a slow receiver's attempt holds up
        no other delivery, and the next call claims more as soon as there is room.
        """
        room = _BATCH - len(self.in_flight)
        if stop.is_set() or room <= 0:
            return False
        claimed = await self.tables.claim(
            self.owner, urls=list(self.by_url), lease_seconds=self.lease_seconds, limit=room
        )
        for delivery in claimed:
            self.in_flight.add(delivery.delivery_id)
            attempts.create_task(self._attempt_alone(client, delivery))
        return len(claimed) == room

    async def _attempt_alone(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        """`_attempt`, whose errors are logged, not raised (they would end every other attempt): its lease ends and it is claimed again."""
        try:
            await self._attempt(client, delivery)
        except StoreError as exc:
            log.warning("webhook %s: %s", delivery.delivery_id, exc)
        except Exception:  # a bug: said loudly; the delivery is tried again when its lease ends
            log.exception("webhook %s failed", delivery.delivery_id)
        finally:
            self.in_flight.discard(delivery.delivery_id)

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        subscription = self.by_url[delivery.url]
        content = delivery.body.encode()
        headers = {
            **sign(subscription.secret, content, msg_id=delivery.delivery_id),
            "content-type": "application/json",
            "user-agent": f"threadloom/{__version__}",
        }
        retry_after: float | None = None
        status: int | None = None
        try:
            # Bounded as a whole: httpx's timeout bounds each read, and a trickle of bytes is many reads.
            async with asyncio.timeout(self.attempt_seconds):
                # Streamed and closed unread: a receiver's answer is its status, whatever it sends after.
                async with client.stream("POST", delivery.url, content=content, headers=headers) as answer:
                    status = answer.status_code
                    retry_after = _retry_after(answer.headers.get("retry-after"), datetime.now(UTC))
            error = f"HTTP {status}"
        except (httpx.HTTPError, TimeoutError) as exc:
            error = type(exc).__name__  # its text can hold the URL, which can hold a token
        if status is not None and 200 <= status < 300:
            await self.tables.delivered(delivery.delivery_id)
            return
        retry_at = self.backoff.retry_at(delivery, datetime.now(UTC), retry_after=retry_after)
        await self.tables.failed(delivery.delivery_id, self.owner, error=error, retry_at=retry_at)
        attempt = delivery.attempts + 1
        if retry_at is None:
            log.error(
                "webhook %s to %s given up after %d attempts: %s",
                delivery.delivery_id,
                where(delivery.url),
                attempt,
                error,
            )
        else:
            log.warning(
                "webhook %s to %s failed (attempt %d): %s", delivery.delivery_id, where(delivery.url), attempt, error
            )
