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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import JsonValue

from .events import ERROR, MODEL_RECORD_EVENTS, RUN_ERROR, TOOL_STARTED, Event, is_bookkeeping, storable_text
from .thread import Thread

__all__ = ["RunLimits", "contention_pause", "failed_attempts", "fingerprint", "over_the_limit", "run_error"]


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


def over_the_limit(thread: Thread, limits: RunLimits, now: datetime | None = None) -> tuple[str, datetime] | None:
    """Why the thread must pause now, and until when, if its last minute holds as many model calls or tool runs as allowed."""
    now = now or datetime.now(UTC)
    since = now - _WINDOW
    calls: list[datetime] = []
    runs: list[datetime] = []
    for event in reversed(thread.events):
        if event.at <= since:
            break
        if event.type == TOOL_STARTED:
            runs.append(event.at)
        elif event.type in MODEL_RECORD_EVENTS and _from_model(event):
            calls.append(event.at)
        # Enough seen to judge: a busy minute costs the check the bound's events, not the minute's.
        if len(calls) >= limits.model_calls_per_minute or len(runs) >= limits.tool_runs_per_minute:
            break
    if len(calls) >= limits.model_calls_per_minute:
        return f"{len(calls)} model calls in the last minute (bound {limits.model_calls_per_minute})", min(
            calls
        ) + _WINDOW
    if len(runs) >= limits.tool_runs_per_minute:
        return f"{len(runs)} tool runs in the last minute (bound {limits.tool_runs_per_minute})", min(runs) + _WINDOW
    return None


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
