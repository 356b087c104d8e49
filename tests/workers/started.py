"""Wait until a worker process says it handles SIGTERM, so that a test may stop it cleanly.

Before its handler is in place, SIGTERM kills a Python process outright (exit -15): a test that
signals a worker which has not started yet would fail for no fault of the worker.
"""

from __future__ import annotations

import subprocess
from typing import IO, Any

__all__ = ["wait_started"]


def wait_started(proc: subprocess.Popen[Any], marker: str = "ready") -> None:
    """Read `proc`'s stdout (a pipe) until a line containing `marker`; fail if it exits first."""
    stream: IO[Any] | None = proc.stdout
    assert stream is not None, "start the process with stdout=subprocess.PIPE"
    while True:
        line = stream.readline()
        text = line.decode() if isinstance(line, bytes) else str(line)
        if not text:
            raise AssertionError(f"the worker exited before it started (exit {proc.wait()})")
        if marker in text:
            return
