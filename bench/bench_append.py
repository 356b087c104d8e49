"""The cost of one `Thread.append` at 10 / 1,000 / 10,000 events: it must not grow with length."""

from __future__ import annotations

import time

from threadloom import Event, Thread

SIZES = (10, 1_000, 10_000)
REPEATS = 2_000


def _thread_of(size: int) -> Thread:
    thread = Thread.start("user_input", {"text": "go"})
    for i in range(size - 1):
        thread = thread.append(Event("note", {"i": i}))
    return thread


def measure(size: int) -> float:
    """Microseconds for one append to a thread of `size` events (best of 5 runs of REPEATS)."""
    best = float("inf")
    for _ in range(5):
        thread = _thread_of(size)
        events = [Event("note", {"n": n}) for n in range(REPEATS)]
        start = time.perf_counter()
        for event in events:
            thread = thread.append(event)
        best = min(best, (time.perf_counter() - start) / REPEATS)
    return best * 1e6


def measure_tuple_copy(size: int) -> float:
    """For scale: microseconds to copy a tuple of `size` events, what a naive append would cost."""
    items = tuple(_thread_of(size).events)
    start = time.perf_counter()
    for _ in range(200):
        _ = (*items, items[0])
    return (time.perf_counter() - start) / 200 * 1e6


def run() -> str:
    """A markdown section with the table."""
    rows = ["| events in the thread | one append (µs) | copying the events instead (µs) |", "| ---: | ---: | ---: |"]
    for size in SIZES:
        rows.append(f"| {size:,} | {measure(size):.2f} | {measure_tuple_copy(size):.2f} |")
    return "\n".join(
        [
            "## Thread.append",
            "",
            f"Best of 5 runs of {REPEATS:,} appends each (events made beforehand; each append folds the",
            "derived state). The last column is what a copy-on-append tuple would pay: it grows with the",
            "thread, the append does not.",
            "",
            *rows,
        ]
    )


if __name__ == "__main__":
    print(run())
