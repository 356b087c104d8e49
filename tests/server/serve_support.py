"""`threadloom serve` as a process of its own, as people run it: started, waited for, signalled, read.

Its stdout (a pipe) carries the two banner lines only; its stderr (the logs) goes to a file, so a
busy server never blocks on a full pipe and a test can read every line it wrote.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from serving import KEYS, SECRET

__all__ = ["ENV", "TESTS", "Server", "wait_for"]

TESTS = Path(__file__).parent.parent
ENV = {
    "PYTHONPATH": os.pathsep.join([str(TESTS / "server"), str(TESTS), *sys.path]),
    "THREADLOOM_API_KEYS": KEYS,
    "THREADLOOM_SECRET": SECRET.decode(),
}
"""What a server process of these tests gets: the test agents importable, the test keys and link secret."""


def wait_for(done: Callable[[], object], what: str, timeout: float = 120) -> None:
    """Wait until `done()` is true (the timeout only stops a hung test; it asserts nothing about speed)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


class Server:
    """One `threadloom serve` process; `url` once its banner says it accepts requests."""

    def __init__(
        self,
        store: str,
        logs: Path,
        *options: str,
        agents: str = "serve_agents:deploy_bot",
        env: Mapping[str, str] = {},
    ) -> None:
        """Start `threadloom serve --store STORE --agents AGENTS --port 0 OPTIONS`, logging to `logs`."""
        self.logs = logs
        self._log_file = logs.open("w")
        command = [sys.executable, "-m", "threadloom.cli", "serve", "--store", store, "--agents", agents]
        self.process = subprocess.Popen(
            [*command, "--port", "0", *options],
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            env={**os.environ, **ENV, **env},
        )
        self.banner: list[str] = []
        self.url = ""

    def wait_ready(self) -> Server:
        """Read the banner; from then on SIGTERM stops the server cleanly."""
        assert self.process.stdout is not None
        while not self.url:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"serve exited before it started (exit {self.process.wait()}): {self.output()}")
            self.banner.append(line)
            if found := re.match(r"serving on (http://\S+) ", line):
                self.url = found[1]
        self.banner.append(self.process.stdout.readline())  # the inbox line
        return self

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 120) -> int:
        """Send `sig` and wait for the process to end; its exit code."""
        self.process.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 120) -> int:
        """Wait for the process to end (its stdout read to the end); its exit code."""
        rest, _ = self.process.communicate(timeout=timeout)
        self.banner.append(rest or "")
        self._log_file.close()
        return self.process.returncode

    def output(self) -> str:
        """Everything it printed: the banner and the logs."""
        return "".join(self.banner) + self.logs.read_text()

    def kill(self) -> None:
        """End it at once, if it still runs (a failed test must not leave it behind)."""
        if self.process.poll() is None:
            self.process.kill()
            self.wait()
