"""The servers of bench/bench_server.py as processes of their own, as people run them, and their stores.

`threadloom serve -q` (its logs, warnings only, to a file: a pipe nobody reads would fill and stall
it) and LangGraph's `langgraph dev --no-browser --no-reload` from bench/.venv-peers, offline: no
LangSmith tracing, no analytics.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["KEY", "Served", "langgraph_dev", "langgraph_version", "store_of", "threadloom_serve"]

HERE = Path(__file__).parent
PEERS_VENV = HERE / ".venv-peers"
LANGGRAPH_APP = HERE / "peers" / "langgraph_server"
CONCURRENCY = 8  # runs at once: threadloom's `--concurrency`, LangGraph's `--n-jobs-per-worker`
KEY = "tlk_bench_" + secrets.token_urlsafe(16)
OFFLINE = {  # LangGraph's server asks nothing of the network: no tracing, no analytics, no version check
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """A `threadloom serve` process and the URL its banner gave."""

    process: subprocess.Popen[str]
    url: str


@contextmanager
def threadloom_serve(
    store: str, effects: Path, *options: str, env: Mapping[str, str] | None = None
) -> Generator[Served]:
    """`threadloom serve` on `store`, as a process, once its banner is out; SIGTERM at the end."""
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
        "THREADLOOM_API_KEYS": f"bench:{KEY}:read+write+approve",
        "BENCH_EFFECTS_FILE": str(effects),
        **(env or {}),
    }
    command = [sys.executable, "-m", "threadloom.cli", "serve", "--store", store, "--agents", "server_agent:agent"]
    command += ["--port", "0", "-q", "--concurrency", str(CONCURRENCY), *options]
    # Its logs (warnings and errors only, -q) go to a file: a pipe nobody reads would fill and stall it.
    logs = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=logs, text=True, env=environment)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("serving on "):
        process.kill()
        process.wait()
        logs.seek(0)
        raise RuntimeError(f"threadloom serve did not start: {line}{logs.read()[-2000:]}")
    try:
        yield Served(process, line.split()[2])
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)
        logs.close()


@contextmanager
def langgraph_dev(effects: Path) -> Generator[str]:
    """LangGraph's server (`langgraph dev`, in-memory runtime) on the same workload; yields its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-langgraph-") as work:
        for name in ("graph.py", "langgraph.json"):
            shutil.copy(LANGGRAPH_APP / name, work)  # it writes its .langgraph_api/ where it runs
        command = [str(PEERS_VENV / "bin" / "langgraph"), "dev", "--no-browser", "--no-reload", "--allow-blocking"]
        command += ["--port", str(port), "--n-jobs-per-worker", str(CONCURRENCY), "--server-log-level", "WARNING"]
        env = {**os.environ, **OFFLINE, "BENCH_EFFECTS_FILE": str(effects)}
        env.pop("LANGSMITH_API_KEY", None)
        logs = Path(work) / "server.log"
        with logs.open("w") as log:
            process = subprocess.Popen(command, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            while not _answers(f"{url}/ok"):
                if process.poll() is not None:
                    raise RuntimeError(f"langgraph dev ended: {logs.read_text()[-2000:]}")
                time.sleep(0.1)
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).is_success
    except httpx.HTTPError:
        return False


def langgraph_version() -> str:
    done = subprocess.run(
        [str(PEERS_VENV / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('langgraph-api'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


@contextmanager
def store_of(label: str, work: str) -> Generator[str]:
    """A fresh store: a SQLite file in `work`, or a throwaway PostgreSQL schema (bench_durable's)."""
    if label == "SQLite":
        yield f"sqlite:///{work}/bench.db"
        return
    from bench_durable import postgres_schema

    loop = asyncio.new_event_loop()
    schema = postgres_schema()
    try:
        yield loop.run_until_complete(schema.__aenter__())
    finally:
        loop.run_until_complete(schema.__aexit__(None, None, None))
        loop.close()
