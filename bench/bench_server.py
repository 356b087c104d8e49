"""`threadloom serve` under 200 concurrent HTTP clients, on SQLite and PostgreSQL, beside LangGraph's own server.

Each client, `ROUNDS` times: launch a deploy thread (`POST`), poll it every `POLL` seconds until
it stops before the tool for approval, approve it (`POST`), poll until it is done. The servers run
as processes of their own, as people run them: `threadloom serve -q` (its worker in the same
process, `CONCURRENCY` runs at once) and `langgraph dev --no-browser --no-reload` (langgraph-api
with langgraph-runtime-inmem, `--n-jobs-per-worker CONCURRENCY`, from bench/.venv-peers; offline:
no LangSmith, no analytics). The clients share one httpx.AsyncClient in this process.

Measured: p50 / p99 of the launch request and of the approval request (its response means the
decision is stored), p50 / p99 from the approval's response to the poll that sees `done` (this
includes up to one `POLL`), requests a second over the whole run (polls included), errors (any
non-2xx or failed request), lost events (a 2xx'd launch or approval missing from the server's
state afterwards) and effects (each approved deploy must have run exactly once: the tool appends
its call's id to a file).

    python bench/bench_server.py            # both stores and LangGraph; prints the section
    python bench/bench_server.py --kill     # kill -9 in the middle, restart, check (bench_server_kill.py)

The servers as processes: bench/server_processes.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from server_processes import CONCURRENCY, KEY, langgraph_dev, langgraph_version, store_of, threadloom_serve

HERE = Path(__file__).parent
CLIENTS, ROUNDS, POLL, ALONE_ROUNDS = 200, 3, 0.25, 50


class Failed(Exception):
    """A request that did not get a 2xx (or no answer at all)."""


@dataclass
class Tally:
    """What the clients saw."""

    launch_ms: list[float] = field(default_factory=list[float])
    approve_ms: list[float] = field(default_factory=list[float])
    done_ms: list[float] = field(default_factory=list[float])
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter[str])
    launched: dict[str, str] = field(default_factory=dict[str, str])  # thread id -> the client's nonce
    approved: dict[str, str] = field(default_factory=dict[str, str])  # thread id -> the approved call's id

    async def send(self, client: httpx.AsyncClient, method: str, url: str, **options: Any) -> Any:
        """One request, counted; its JSON body, or `Failed`."""
        self.requests += 1
        try:
            response = await client.request(method, url, **options)
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] += 1
            raise Failed(type(exc).__name__) from exc
        if not response.is_success:
            self.errors[f"{method} {response.status_code}"] += 1
            raise Failed(f"{method} {url}: {response.status_code} {response.text[:200]}")
        return response.json()


class Peer(Protocol):
    """One server's API for the workload."""

    headers: dict[str, str]

    async def launch(self, tally: Tally, client: httpx.AsyncClient, nonce: str) -> str: ...
    async def stopped(self, tally: Tally, client: httpx.AsyncClient, thread_id: str) -> str | None: ...
    async def approve(self, tally: Tally, client: httpx.AsyncClient, thread_id: str, call_id: str) -> None: ...
    async def done(self, tally: Tally, client: httpx.AsyncClient, thread_id: str) -> bool: ...
    async def lost(self, tally: Tally, client: httpx.AsyncClient, thread_id: str) -> list[str]: ...


class Threadloom:
    """`threadloom serve`'s /v1 API."""

    headers: dict[str, str] = {"Authorization": f"Bearer {KEY}"}

    async def launch(self, tally: Tally, client: httpx.AsyncClient, nonce: str) -> str:
        body = {"agent": "deploy_bot", "event": {"type": "slack_message", "data": {"text": "deploy", "nonce": nonce}}}
        launched = await tally.send(client, "POST", "/v1/threads", json=body, headers={"Idempotency-Key": nonce})
        return launched["thread_id"]

    async def stopped(self, tally: Tally, client: httpx.AsyncClient, thread_id: str) -> str | None:
        thread = await tally.send(client, "GET", f"/v1/threads/{thread_id}")
        return thread["pending"]["id"] if thread["status"] == "waiting_approval" else None

    async def approve(self, tally: Tally, client: httpx.AsyncClient, thread_id: str, call_id: str) -> None:
        await tally.send(client, "POST", f"/v1/threads/{thread_id}/approvals/{call_id}", json={"decision": "approve"})

    async def done(self, tally: Tally, client: httpx.AsyncClient, thread_id: str) -> bool:
        return (await tally.send(client, "GET", f"/v1/threads/{thread_id}"))["status"] == "done"

    async def lost(self, tally: Tally, client: httpx.AsyncClient, thread_id: str) -> list[str]:
        thread = await tally.send(client, "GET", f"/v1/threads/{thread_id}")
        events = thread["events"]
        problems = [] if events[0]["data"].get("nonce") == tally.launched[thread_id] else [f"{thread_id}: launch"]
        call_id = tally.approved.get(thread_id)
        if call_id and not any(e["type"] == "approval" and e["data"].get("call_id") == call_id for e in events):
            problems.append(f"{thread_id}: approval")
        return problems


class LangGraph:
    """LangGraph's Agent Server API: a run on a thread created with it; `interrupt()` stops it; a resume run."""

    headers: dict[str, str] = {}

    async def launch(self, tally: Tally, client: httpx.AsyncClient, nonce: str) -> str:
        thread_id = str(uuid.uuid4())  # LangGraph wants a UUID
        body = {"assistant_id": "deploy", "input": {"text": nonce}, "if_not_exists": "create"}
        await tally.send(client, "POST", f"/threads/{thread_id}/runs", json=body)
        return thread_id

    async def stopped(self, tally: Tally, client: httpx.AsyncClient, thread_id: str) -> str | None:
        thread = await tally.send(client, "GET", f"/threads/{thread_id}")
        return "interrupt" if thread["status"] == "interrupted" else None

    async def approve(self, tally: Tally, client: httpx.AsyncClient, thread_id: str, call_id: str) -> None:
        body = {"assistant_id": "deploy", "command": {"resume": "approve"}}
        await tally.send(client, "POST", f"/threads/{thread_id}/runs", json=body)

    async def done(self, tally: Tally, client: httpx.AsyncClient, thread_id: str) -> bool:
        thread = await tally.send(client, "GET", f"/threads/{thread_id}")
        return thread["status"] == "idle" and "result" in (thread.get("values") or {})

    async def lost(self, tally: Tally, client: httpx.AsyncClient, thread_id: str) -> list[str]:
        values: dict[str, Any] = (await tally.send(client, "GET", f"/threads/{thread_id}")).get("values") or {}
        problems = [] if values.get("text") == tally.launched[thread_id] else [f"{thread_id}: launch"]
        if thread_id in tally.approved and not values.get("approved"):
            problems.append(f"{thread_id}: approval")
        return problems


async def _until(check: Callable[[Tally, httpx.AsyncClient, str], Awaitable[Any]], *args: Any) -> Any:
    deadline = time.monotonic() + 300
    while not (found := await check(*args)):
        if time.monotonic() > deadline:
            raise Failed("timed out")
        await asyncio.sleep(POLL)
    return found


async def _client(peer: Peer, tally: Tally, http: httpx.AsyncClient, number: int, rounds: int) -> None:
    for round_ in range(rounds):
        try:
            nonce = f"c{number}-r{round_}-{secrets.token_hex(3)}"
            started = time.perf_counter()
            thread_id = await peer.launch(tally, http, nonce)
            tally.launch_ms.append((time.perf_counter() - started) * 1e3)
            tally.launched[thread_id] = nonce
            call_id = await _until(peer.stopped, tally, http, thread_id)
            started = time.perf_counter()
            await peer.approve(tally, http, thread_id, call_id)
            answered = time.perf_counter()
            tally.approve_ms.append((answered - started) * 1e3)
            tally.approved[thread_id] = call_id
            await _until(peer.done, tally, http, thread_id)
            tally.done_ms.append((time.perf_counter() - answered) * 1e3)
        except Failed:
            continue  # counted in tally.errors; the client goes on with a new thread


async def drive(
    peer: Peer,
    base_url: str,
    *,
    clients: int = CLIENTS,
    rounds: int = ROUNDS,
    kill: Callable[[Tally], object] | None = None,
) -> tuple[Tally, float]:
    """Run the workload against a server: the tally and the wall time in seconds.

    `kill(tally)` is called after every answered approval (bench_server_kill.py ends the server from it).
    """
    tally = Tally()
    async with contextlib.AsyncExitStack() as stack:
        # A client each, with its own connection, as 200 programs would have: one pool shared by
        # all would cost the clients more (httpcore scans its pool on every request) than the servers.
        https = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, headers=peer.headers, timeout=120))
            for _ in range(clients)
        ]
        started = time.perf_counter()
        tasks = [asyncio.create_task(_client(peer, tally, http, n, rounds)) for n, http in enumerate(https)]
        if kill is not None:
            while not all(task.done() for task in tasks):
                kill(tally)
                await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        return tally, time.perf_counter() - started


async def audit(peer: Peer, base_url: str, tally: Tally) -> list[str]:
    """After a run: the 2xx'd launches and approvals the server does not have."""
    lost: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, headers=peer.headers, timeout=120) as http:
        checker = Tally(launched=tally.launched, approved=tally.approved)
        for thread_id in tally.launched:
            lost += await peer.lost(checker, http, thread_id)
    return lost


def effects_ran(effects: Path, expected: set[str]) -> dict[str, int]:
    """How often each expected effect ran (a line per run in `effects`), and effects nobody expected."""
    ran = Counter(effects.read_text().split()) if effects.exists() else Counter[str]()
    return {
        "effects_once": sum(1 for key in expected if ran[key] == 1),
        "effects_missing": sum(1 for key in expected if ran[key] == 0),
        "effects_repeated": sum(1 for key in expected if ran[key] > 1) + sum(1 for key in ran if key not in expected),
    }


def summary(tally: Tally, seconds: float, lost: list[str], effects: Mapping[str, int]) -> dict[str, Any]:
    """The figures of one run."""

    def pct(values: list[float], q: int) -> float | None:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else None

    return {
        "launch_p50": pct(tally.launch_ms, 50),
        "launch_p99": pct(tally.launch_ms, 99),
        "approve_p50": pct(tally.approve_ms, 50),
        "approve_p99": pct(tally.approve_ms, 99),
        "done_p50": pct(tally.done_ms, 50),
        "done_p99": pct(tally.done_ms, 99),
        "requests_per_s": tally.requests / seconds,
        "seconds": seconds,
        "threads": len(tally.launched),
        "approved": len(tally.approved),
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "lost": len(lost),
        **effects,
    }


def measure(*, clients: int = CLIENTS, rounds: int = ROUNDS) -> dict[str, Any]:
    """The workload against each server, one after another (none measures while another runs).

    Each server runs it twice, each time freshly started: with `clients` clients, and with one
    client doing `ALONE_ROUNDS` rounds (the round trip when nothing queues in front of it).
    """
    results: dict[str, Any] = {"clients": clients, "rounds": rounds, "poll": POLL, "concurrency": CONCURRENCY}
    loads = [("", clients, rounds), (", 1 client", 1, ALONE_ROUNDS)]
    with tempfile.TemporaryDirectory(prefix="bench-server-") as work:
        for name in ("SQLite", "PostgreSQL", "LangGraph"):
            for suffix, how_many, times in loads:
                row = (name if name == "LangGraph" else f"threadloom, {name}") + suffix
                try:
                    results[row] = _run(name, Path(work) / slug(row), how_many, times)
                except Exception as exc:  # a server that cannot run here is reported, not fatal
                    results[row] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"-- {row}: {json.dumps(results[row])[:300]}", flush=True)
    results["langgraph_api"] = langgraph_version()
    return results


def _run(name: str, work: Path, clients: int, rounds: int) -> dict[str, Any]:
    work.mkdir()
    effects = work / "effects"
    if name == "LangGraph":
        with langgraph_dev(effects) as url:
            tally, seconds = asyncio.run(drive(LangGraph(), url, clients=clients, rounds=rounds))
            lost = asyncio.run(audit(LangGraph(), url, tally))
        return summary(
            tally, seconds, lost, effects_ran(effects, set(tally.approved))
        )  # its graph writes the thread id
    with store_of(name, str(work)) as store, threadloom_serve(store, effects) as served:
        tally, seconds = asyncio.run(drive(Threadloom(), served.url, clients=clients, rounds=rounds))
        lost = asyncio.run(audit(Threadloom(), served.url, tally))
    return summary(
        tally, seconds, lost, effects_ran(effects, set(tally.approved.values()))
    )  # the tool writes the call id


def slug(text: str) -> str:
    """A folder name for a row."""
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


# -- RESULTS.md -----------------------------------------------------------------------------------

HEADING = "## The server under concurrent HTTP clients: threadloom serve beside LangGraph's server"
TARGET_MS = 50  # issue 16: p99 of an approval round trip on SQLite, on a quiet host
_ROWS = tuple(
    f"{n}{s}" for n in ("threadloom, SQLite", "threadloom, PostgreSQL", "LangGraph") for s in ("", ", 1 client")
)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def section(results: Mapping[str, Any]) -> str:
    """bench/RESULTS.md's section for one run of `measure` (and of bench_server_kill.measure, under `kill`)."""
    lines = [
        HEADING,
        "",
        f"bench/bench_server.py: each of {results['clients']} clients (httpx, one process, a connection each) launches a deploy thread,",
        f"polls it every {results['poll'] * 1000:.0f} ms until it stops before the tool for approval, approves it, and",
        f"polls until it is done; {results['rounds']} times. `threadloom serve -q` (its worker in the same process,",
        f"{results['concurrency']} runs at once) on SQLite and on PostgreSQL; LangGraph's own server (`langgraph dev",
        f"--no-browser --no-reload`, langgraph-api {results.get('langgraph_api', '?')} with the in-memory runtime,",
        f"`--n-jobs-per-worker {results['concurrency']}`, offline) on the same workload, its graph stopping with",
        "`interrupt()` before the tool. *approve*: the approval request until its answer (the decision is",
        "stored); *approve → done*: from that answer to the poll that sees the thread done (includes up to one",
        "poll interval). *lost*: a 2xx'd launch or approval missing afterwards; *once*: approved deploys whose",
        "effect (a line appended by the tool) is there exactly once. The clients and the servers share the",
        "machine's 2 cores: with 200 clients these are latencies under saturation, read side by side; the",
        "*1 client* rows (one client, 50 rounds) are the round trip with nothing queued in front of it.",
        "What each answer costs differs: threadloom answers a launch or a decision once it is committed",
        "(SQLite `synchronous=FULL`: synced to disk; PostgreSQL `synchronous_commit=on`), LangGraph's",
        "in-memory runtime once it is in memory (it writes its state to disk later, now and then).",
        "On PostgreSQL the API's reads (every poll) and the in-process worker's steps share the store's",
        "pool of 10 connections: under 200 polling clients the worker's steps can wait behind the polls.",
        "",
        "| server | launch p50 / p99 (ms) | approve p50 / p99 (ms) | approve → done p50 / p99 (ms) | requests/s | threads | errors | lost | effects once | repeated |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in _ROWS:
        r: dict[str, Any] = results.get(name) or {"error": "not run"}
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {_ms(r['launch_p50'])} / {_ms(r['launch_p99'])} | {_ms(r['approve_p50'])} / "
            f"{_ms(r['approve_p99'])} | {_ms(r['done_p50'])} / {_ms(r['done_p99'])} | {r['requests_per_s']:,.0f} | "
            f"{r['threads']:,} | {r['errors']} | {r['lost']} | {r['effects_once']:,} of {r['approved']:,} | "
            f"{r['effects_repeated']} |"
        )
    lines += ["", f"Target: p99 of an approval round trip under {TARGET_MS} ms on SQLite on a quiet host."]
    for suffix, load in (("", f"{results['clients']} clients"), (", 1 client", "one client")):
        ours: dict[str, Any] = results.get(f"threadloom, SQLite{suffix}") or {}
        theirs: dict[str, Any] = results.get(f"LangGraph{suffix}") or {}
        if ours.get("approve_p99") is None or theirs.get("approve_p99") is None:
            continue
        met = "met" if ours["approve_p99"] < TARGET_MS else "**missed**"
        lines.append(
            f"With {load}: {met} ({ours['approve_p99']:,.1f} ms; LangGraph's server {theirs['approve_p99']:,.1f} ms in"
            f" the same run, threadloom ÷ LangGraph {ours['approve_p99'] / theirs['approve_p99']:.2f} at p99 and"
            f" {ours['approve_p50'] / theirs['approve_p50']:.2f} at p50; launch"
            f" {ours['launch_p50'] / theirs['launch_p50']:.2f} at p50; requests/s"
            f" {ours['requests_per_s'] / theirs['requests_per_s']:.2f}×)."
        )
    if "kill" in results:
        lines += ["", _kill_section(results["kill"])]
    return "\n".join(lines)


def _kill_section(kill: Mapping[str, Any]) -> str:
    lines = [
        f"### kill -9 in the middle, then a restart ({kill['clients']} clients)",
        "",
        "bench/bench_server_kill.py: the same workload with a webhook subscription; once a third of the",
        "approvals were answered, `threadloom serve` gets SIGKILL, and a new one starts on the same store.",
        "*lost*: 2xx'd launches and approvals missing from the store; *once*: finished deploys whose effect",
        "is there exactly once; *cut in tool*: deploys the kill interrupted inside the tool, which are not",
        "run again (their outcome is unknown) but ask a person; *webhooks missing*: changes never delivered;",
        "*recovered*: from the restart until every approved thread ended, the dead worker's leases (30 s) included.",
        "",
        "| store | 2xx launches | 2xx approvals | threads | lost | deploys once | repeated | cut in tool | webhooks (missing) | recovered (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label in ("SQLite", "PostgreSQL"):
        r: dict[str, Any] = kill.get(label) or {"error": "not run"}
        if "error" in r:
            lines.append(f"| {label} | {r['error']} | | | | | | | | |")
            continue
        lines.append(
            f"| {label} | {r['acknowledged_launches']} | {r['acknowledged_approvals']} | {r['threads_stored']} | "
            f"{r['lost']} | {r['effects_once']} | {r['effects_repeated'] + r.get('effects_unknown', 0)} | {r['cut_in_tool']} | "
            f"{r['webhooks_expected']} ({r['webhooks_missing']}) | {r['recovered_seconds']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    if sys.argv[1:] == ["--kill"]:
        import bench_server_kill

        print(json.dumps(bench_server_kill.measure(), indent=1))
    else:
        print(json.dumps(measure(), indent=1))
