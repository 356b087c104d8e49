"""The run limits: the per-minute window a run keeps as it appends, and the limits' own checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadloom import Event, Thread, UserError
from threadloom._limits import RecentActivity, RunLimits

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KINDS = ("tool_started", "tool_call", "tool_response", "note", "model_error", "tool_error")


def event(kind: str, at: datetime) -> Event:
    if kind == "model_error":
        return Event("error", {"source": "model", "message": "bad json"}, at=at)
    if kind == "tool_error":
        return Event("error", {"source": "tool", "message": "boom"}, at=at)
    return Event(kind, {}, at=at)


def thread_of(steps: list[tuple[str, int]]) -> tuple[Thread, list[datetime]]:
    """A thread whose events come `gap` seconds after one another, in log order, and their times."""
    thread, at = Thread([Event("user_input", "go", at=START)]), START
    times: list[datetime] = []
    for kind, gap in steps:
        at += timedelta(seconds=gap)
        thread = thread.append(event(kind, at))
        times.append(at)
    return thread, times


steps = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 40)), max_size=40)
bounds = st.builds(RunLimits, model_calls_per_minute=st.integers(1, 6), tool_runs_per_minute=st.integers(1, 6))


@given(steps, st.integers(0, 40), bounds, st.integers(0, 90))
def test_looking_as_the_run_appends_agrees_with_looking_at_the_whole_thread(
    steps: list[tuple[str, int]], loaded: int, limits: RunLimits, later: int
) -> None:
    whole, times = thread_of(steps)
    loaded = min(loaded, len(steps))
    before = Thread(whole.events[: loaded + 1], thread_id=whole.id)
    now = (times[-1] if times else START) + timedelta(seconds=later)
    kept = RecentActivity(before, limits, now=times[loaded - 1] if loaded else START)
    for grown in range(loaded + 2, len(whole) + 1):  # a look after every append, as a run makes them
        kept.over(Thread(whole.events[:grown], thread_id=whole.id), now=times[grown - 2])
    assert kept.over(whole, now=now) == RecentActivity(whole, limits, now=now).over(whole, now=now)


def test_a_busy_minute_pauses_until_the_bounds_oldest_event_leaves_it() -> None:
    thread, times = thread_of([("tool_started", 1)] * 5)
    over = RecentActivity(thread, RunLimits(tool_runs_per_minute=3), now=times[-1]).over(thread, now=times[-1])
    assert over == ("3 tool runs in the last minute (the bound)", times[2] + timedelta(seconds=60))


def test_only_the_models_own_errors_count_as_model_calls() -> None:
    thread, times = thread_of([("tool_error", 1), ("tool_error", 1), ("model_error", 1), ("tool_call", 1)])
    limits = RunLimits(model_calls_per_minute=2)
    assert RecentActivity(thread, limits, now=times[-1]).over(thread, now=times[-1]) == (
        "2 model calls in the last minute (the bound)",
        times[2] + timedelta(seconds=60),
    )


def test_events_older_than_a_minute_do_not_count() -> None:
    thread, times = thread_of([("tool_started", 1)] * 3)
    recent = RecentActivity(thread, RunLimits(tool_runs_per_minute=3), now=times[-1])
    assert recent.over(thread, now=times[-1] + timedelta(seconds=59)) is None  # the first left at +58 s


@pytest.mark.parametrize(
    "arguments",
    [{"attempts": 0}, {"model_calls_per_minute": 0}, {"tool_runs_per_minute": -1}, {"backoff_seconds": 400.0}],
)
def test_limits_that_could_never_allow_a_run_are_refused(arguments: dict[str, float]) -> None:
    with pytest.raises(UserError, match="RunLimits"):
        RunLimits(**arguments)  # pyright: ignore[reportArgumentType]
