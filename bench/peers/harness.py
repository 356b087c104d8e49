"""The measuring half every framework's bench script shares (stdlib only, so it runs in either venv).

A framework's script defines three functions and calls `main`:

- `make(n)`: an agent for the workload with n tool calls (bench/workload.py), as a function that does
  one in-memory run each time it is called (its fake model starts over; the agent is built once, so
  the time measured is the run's, not the construction's);
- `run_persisted(n, path)`: the same run persisted to a SQLite file at `path`;
- `version()`: the framework's name and version.

`main` reads a JSON job from argv[1] and prints a JSON result on stdout.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["db_bytes", "main"]

Make = Callable[[int], Callable[[], Any]]
RunPersisted = Callable[[int, str], Any]


def db_bytes(path: str) -> int:
    """The size of a SQLite database once its WAL is folded in (what the file holds)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def _memory(make: Make, sizes: list[int], budget: float) -> dict[str, Any]:
    """Per size: the time per step of repeated runs (median, min, max).

    The first run at the smallest size warms up (imports, schema builds, caches). Runs repeat until
    `budget` seconds are spent, at least 3 times and at most 50; a size whose single run takes more
    than `single` seconds runs once (`runs` says how many), to keep `make bench` within minutes.
    """
    single = 8.0
    out: dict[str, Any] = {}
    for index, n in enumerate(sizes):
        run = make(n)
        if index == 0:
            run()
        per_step: list[float] = []
        spent = 0.0
        while len(per_step) < 50 and (spent < budget or len(per_step) < 3):
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            per_step.append(elapsed / n)
            spent += elapsed
            if elapsed > single:
                break
        out[str(n)] = {
            "median_us": statistics.median(per_step) * 1e6,
            "min_us": min(per_step) * 1e6,
            "max_us": max(per_step) * 1e6,
            "runs": len(per_step),
        }
    return out


def _persisted(run: RunPersisted, sizes: list[int]) -> dict[str, Any]:
    """Per size: one persisted run in a fresh file; time per step and the database's bytes per step."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        empty = os.path.join(tmp, "empty.db")
        run(1, empty)  # warm-up, and the size of a database holding one tiny run
        for n in sizes:
            path = os.path.join(tmp, f"run{n}.db")
            start = time.perf_counter()
            run(n, path)
            elapsed = time.perf_counter() - start
            out[str(n)] = {
                "step_us": elapsed / n * 1e6,
                "bytes_per_step": (db_bytes(path) - db_bytes(empty)) / (n - 1),
            }
    return out


def _rss(make: Make, runs: int, n: int) -> dict[str, Any]:
    """Peak resident memory of `runs` short runs (n tool calls each) in this process."""
    run = make(n)
    run()
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for _ in range(runs):
        run()
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mb": peak / 1024, "growth_mb": (peak - before) / 1024, "run_ms": elapsed / runs * 1e3}


def main(version: Callable[[], dict[str, str]], make: Make, run_persisted: RunPersisted | None) -> None:
    """Do the job in argv[1] (`{"mode": "memory" | "persisted" | "rss" | "version", ...}`); print JSON."""
    warnings.simplefilter("ignore")  # deprecation notices of the peers are not results
    job = json.loads(sys.argv[1])
    mode = job["mode"]
    if mode == "version":
        result: dict[str, Any] = version()
    elif mode == "memory":
        result = _memory(make, job["sizes"], job.get("budget", 2.0))
    elif mode == "persisted":
        result = _persisted(run_persisted, job["sizes"]) if run_persisted else {}
    elif mode == "rss":
        result = _rss(make, job["runs"], job["n"])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result))
