"""`kill -9` of `threadloom serve` in the middle of bench_server.py's workload, then a restart on the same store.

The server runs with a webhook subscription to a receiver in this process. Once a third of the
approvals were answered, the server gets SIGKILL (requests in flight, runs in their tools, webhooks
queued); the clients' later requests fail and they stop. A new `threadloom serve` on the same store
then carries on. Counted: the launches and approvals answered 2xx that the store lacks (must be
0), finished deploys that ran other than once (0), and changes whose webhook never arrived (0).
A deploy cut off inside its tool is not run again (its outcome is unknown): its thread asks a
person, and the count says how many did.

    python bench/bench_server.py --kill
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from bench_server import CLIENTS, ROUNDS, Tally, Threadloom, audit, drive
from server_processes import store_of, threadloom_serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_ENDED = ("done", "waiting_human")
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """A webhook receiver: it keeps (thread, type) of every delivery it answered 204."""

    def __init__(self) -> None:
        self.got: set[tuple[str, str]] = set()
        self.requests = 0

    async def hook(self, request: Request) -> Response:
        body = json.loads(await request.body())
        self.requests += 1
        self.got.add((body["thread_id"], body["type"]))
        return Response(status_code=204)

    @contextlib.contextmanager
    def serving(self) -> Generator[str]:
        """Run in uvicorn on a thread of its own; yield the hook's URL."""
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/hook"
        finally:
            server.should_exit = True
            thread.join(30)


async def _stored(url: str) -> list[dict[str, Any]]:
    """Every thread the server has, in full (paged by its cursor)."""
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, headers=Threadloom.headers, timeout=120) as http:
        cursor: str | None = None
        while True:
            page = (
                await http.get("/v1/threads", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
            ).json()
            for row in page["threads"]:
                found.append((await http.get(f"/v1/threads/{row['thread_id']}")).json())
            if not (cursor := page["next_cursor"]):
                return found


def _approvals(thread: dict[str, Any]) -> list[str]:
    return [e["data"]["call_id"] for e in thread["events"] if e["type"] == "approval"]


def _effects(effects: Path, threads: list[dict[str, Any]]) -> dict[str, int]:
    ran = Counter(effects.read_text().split()) if effects.exists() else Counter[str]()
    done = {call for t in threads if t["status"] == "done" for call in _approvals(t)}
    cut = {call for t in threads if t["status"] == "waiting_human" for call in _approvals(t)}
    return {
        "effects_once": sum(1 for key in done if ran[key] == 1),
        "effects_missing": sum(1 for key in done if ran[key] == 0),
        "effects_repeated": sum(1 for count in ran.values() if count > 1),
        "effects_unknown": sum(1 for key in ran if key not in done | cut),  # of no call the store approved
    }


def once(label: str, work: str, *, clients: int = CLIENTS, rounds: int = ROUNDS) -> dict[str, Any]:
    """One kill and restart on a fresh store of this kind."""
    effects = Path(work) / f"{label}.kill-effects"
    receiver = Receiver()
    with store_of(label, work) as store, receiver.serving() as hook:
        options = ("--webhook", hook)
        env = {"THREADLOOM_WEBHOOK_SECRET": WEBHOOK_SECRET}
        with threadloom_serve(store, effects, *options, env=env) as served:

            def kill(tally: Tally) -> None:
                if len(tally.approved) >= clients * rounds // 3 and served.process.poll() is None:
                    served.process.kill()

            tally, _ = asyncio.run(drive(Threadloom(), served.url, clients=clients, rounds=rounds, kill=kill))
        started = time.perf_counter()
        with threadloom_serve(store, effects, *options, env=env) as served:
            threads = asyncio.run(_stored(served.url))
            while any(_approvals(t) and t["status"] not in ("done", "waiting_human") for t in threads):
                time.sleep(0.5)
                threads = asyncio.run(_stored(served.url))
            recovered = time.perf_counter() - started
            # Pages are newest first by update: a thread the worker moves while they are read can
            # be missed, so read until two readings agree (nothing is running any more).
            while (again := asyncio.run(_stored(served.url))) != threads:
                threads = again
            expected = {(t["thread_id"], "thread.waiting_approval") for t in threads if t["status"] != "ready"}
            expected |= {(t["thread_id"], f"thread.{t['status']}") for t in threads if t["status"] in _ENDED}
            deadline = time.monotonic() + 300
            while not expected <= receiver.got and time.monotonic() < deadline:
                time.sleep(0.5)
            lost = asyncio.run(audit(Threadloom(), served.url, tally))
    return {
        "acknowledged_launches": len(tally.launched),
        "acknowledged_approvals": len(tally.approved),
        "threads_stored": len(threads),
        "lost": len(lost),
        # A deploy the kill cut off inside its tool is not run again: its thread asks a person.
        "cut_in_tool": sum(1 for t in threads if t["status"] == "waiting_human"),
        **_effects(effects, threads),
        "webhooks_expected": len(expected),
        "webhooks_missing": len(expected - receiver.got),
        "webhook_requests": receiver.requests,
        "recovered_seconds": recovered,
        "delivered_seconds": time.perf_counter() - started,
    }


def measure(*, clients: int = CLIENTS, rounds: int = ROUNDS) -> dict[str, Any]:
    """`once` on SQLite and on PostgreSQL."""
    results: dict[str, Any] = {"clients": clients, "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="bench-kill-") as work:
        for label in ("SQLite", "PostgreSQL"):
            try:
                results[label] = once(label, work, clients=clients, rounds=rounds)
            except Exception as exc:  # reported, not fatal: the other store still runs
                results[label] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"-- kill -9, {label}: {json.dumps(results[label])}", flush=True)
    return results
