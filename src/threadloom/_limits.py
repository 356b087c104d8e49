"""How often a thread's runs may fail, and how fast a thread may call its model and tools.

A run that ends in an exception nobody expected, or that could not go on (its model could not be
asked), is recorded in the thread as a bookkeeping `run_error` event with the time it may be tried
again; the stores' claims skip the thread until then (`ThreadSummary.retry_at`). The delay doubles
with each failed attempt since the thread last made progress, with jitter; after
`RunLimits.attempts` the thread fails for good (a `failed` event naming the error). The breaker
counts the thread's own recent events, so it holds across workers, processes and restarts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import JsonValue

from .events import ERROR, MODEL_RECORD_EVENTS, RUN_ERROR, TOOL_STARTED, Event, is_bookkeeping, storable_text
from .exceptions import UserError
from .thread import Thread

__all__ = [
    "RecentActivity",
    "RunLimits",
    "contention_pause",
    "failed_attempts",
    "fingerprint",
    "run_error",
]


@dataclass(frozen=True, slots=True)
class RunLimits:
    """The bounds on a thread's runs (`Runtime(limits=...)`)."""

    attempts: int = 8
    """Runs that may fail in a row (without progress in between) before the thread fails for good."""
    backoff_seconds: float = 2.0
    """The pause after the first failed run; it doubles with each one after, with jitter of +-50%."""
    max_backoff_seconds: float = 300.0
    """The longest pause between two attempts."""
    model_calls_per_minute: int = 60
    """At most this many model answers a thread records in any 60 seconds (the circuit breaker)."""
    tool_runs_per_minute: int = 60
    """At most this many tool runs (`tool_started`) a thread records in any 60 seconds."""

    def __post_init__(self) -> None:
        counts = {"attempts": self.attempts, "model_calls_per_minute": self.model_calls_per_minute}
        counts["tool_runs_per_minute"] = self.tool_runs_per_minute
        if low := [f"{name}={value!r}" for name, value in counts.items() if value < 1]:
            raise UserError(f"RunLimits: {', '.join(low)}; each must be at least 1")
        if not 0 <= self.backoff_seconds <= self.max_backoff_seconds:
            raise UserError(
                f"RunLimits: backoff_seconds={self.backoff_seconds!r} must be from 0 to "
                f"max_backoff_seconds={self.max_backoff_seconds!r}"
            )

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt `attempt` + 1 may start: exponential, capped, with jitter."""
        base = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(0, attempt - 1))
        return base * random.uniform(0.5, 1.5)


_WINDOW = timedelta(seconds=60)


def failed_attempts(thread: Thread) -> int:
    """The `run_error` events since the thread last made progress (an event neither bookkeeping nor an `error`)."""
    count = 0
    for event in reversed(thread.events):
        if event.type == RUN_ERROR:
            count += 1
        elif event.type != ERROR and not is_bookkeeping(event.type):
            break
    return count


class RecentActivity:
    """Whether a thread's last minute holds as many model calls or tool runs as `limits` allow, kept as a run appends.

    Each look reads only the events appended since the last one, so a step costs the same however
    busy the thread's minute was. The first reading goes back through the minute (to the first older
    event); a thread with fewer events than the smaller bound cannot reach either, so it is put off
    until the thread may. Of each kind only the bound's most recent times are kept: older ones leave
    the minute first, so they never decide.
    """

    __slots__ = ("_calls", "_limits", "_read", "_runs")

    def __init__(self, thread: Thread, limits: RunLimits, now: datetime | None = None) -> None:
        self._limits = limits
        self._calls: deque[datetime] = deque(maxlen=limits.model_calls_per_minute)
        self._runs: deque[datetime] = deque(maxlen=limits.tool_runs_per_minute)
        self._read: int | None = None  # how many of the thread's events are counted; None: not read yet
        self._catch_up(thread, now)

    def over(self, thread: Thread, now: datetime | None = None) -> tuple[str, datetime] | None:
        """Why `thread` (the one this was made from, grown by appends) must pause now, and until when; None if it need not.

        Until when: the moment the oldest of the bound's most recent events leaves the minute.
        """
        self._catch_up(thread, now)
        if self._read is None:
            return None
        since = (now or datetime.now(UTC)) - _WINDOW
        limits = self._limits
        for times, bound, what in (
            (self._calls, limits.model_calls_per_minute, "model calls"),
            (self._runs, limits.tool_runs_per_minute, "tool runs"),
        ):
            while times and times[0] <= since:  # a run appends its events in time order
                times.popleft()
            if len(times) >= bound:
                return f"{bound} {what} in the last minute (the bound)", times[0] + _WINDOW
        return None

    def _catch_up(self, thread: Thread, now: datetime | None) -> None:
        """Count the events not counted yet: the new ones, or at first the minute's (once the thread is long enough)."""
        if self._read is not None:
            self._count(thread.events[self._read :])
        elif len(thread) >= min(self._limits.model_calls_per_minute, self._limits.tool_runs_per_minute):
            since = (now or datetime.now(UTC)) - _WINDOW
            recent: list[Event] = []
            for event in reversed(thread.events):  # back to the first event older than the minute
                if event.at <= since:
                    break
                recent.append(event)
            self._count(reversed(recent))
        else:
            return
        self._read = len(thread)

    def _count(self, events: Iterable[Event]) -> None:
        for event in events:
            if event.type == TOOL_STARTED:
                self._runs.append(event.at)
            elif event.type in MODEL_RECORD_EVENTS and _from_model(event):
                self._calls.append(event.at)


def _from_model(event: Event) -> bool:
    """Whether an event of `MODEL_RECORD_EVENTS` records a model's answer (not a tool's or the loop's error)."""
    if event.type != ERROR:
        return True
    return isinstance(event.data, dict) and event.data.get("source") == "model"


def run_error(error_type: str, message: str, attempt: int, retry_at: datetime | None) -> Event:
    """The bookkeeping event for a failed run (`message` made storable and cut to 500 characters)."""
    data: dict[str, JsonValue] = {
        "error_type": storable_text(error_type)[:100],
        "message": storable_text(message)[:500],
        "attempt": attempt,
        "retry_at": None if retry_at is None else retry_at.isoformat(),
    }
    return Event(RUN_ERROR, data)


def fingerprint(*request: JsonValue) -> str:
    """A short digest of what an idempotency key delivers: the same request gives the same text."""
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


async def contention_pause(attempt: int) -> None:
    """The pause after losing the race for a thread `attempt` + 1 times: exponential with full jitter, at most 0.5 s."""
    await asyncio.sleep(random.uniform(0, min(0.5, 0.002 * 2**attempt)))
