"""`kill -9` of `threadloom serve` in the middle of clients launching and approving, then a restart on the same store.

Every launch and approval that got a 2xx is in the store, no deploy runs twice (each approved one
whose result is recorded ran exactly once; one cut off inside its tool asks a person), and every
webhook the changes queued is delivered (at least once: the same `webhook-id` may come twice).
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from receiver import Receiver
from serve_support import Server, wait_for
from serving import ADMIN, serving

from threadloom import Runtime, Thread
from workers.effects import read

CLIENTS, ROUNDS, KILL_AFTER = 30, 3, 30  # kill once this many approvals were answered 2xx
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Acknowledged:
    """What the server answered 2xx before it died."""

    launched: dict[str, str] = field(default_factory=dict[str, str])  # thread id -> the nonce in its first event
    approved: dict[str, str] = field(default_factory=dict[str, str])  # thread id -> the approved call's id


async def _client(http: httpx.AsyncClient, acked: Acknowledged, number: int) -> None:
    for round_ in range(ROUNDS):
        nonce = f"c{number}-r{round_}-{secrets.token_hex(3)}"
        try:
            event = {"type": "slack_message", "data": {"text": "deploy to production", "nonce": nonce}}
            launched = await http.post(
                "/v1/threads", json={"agent": "deploy_bot", "event": event}, headers={"Idempotency-Key": nonce}
            )
            assert launched.is_success, launched.text
            thread_id = launched.json()["thread_id"]
            acked.launched[thread_id] = nonce
            while True:  # poll, as a client of the API would
                thread = (await http.get(f"/v1/threads/{thread_id}")).json()
                if thread["status"] == "waiting_approval":
                    break
                await asyncio.sleep(0.02)
            call_id = thread["pending"]["id"]
            approved = await http.post(f"/v1/threads/{thread_id}/approvals/{call_id}", json={"decision": "approve"})
            assert approved.is_success, approved.text
            acked.approved[thread_id] = call_id
        except httpx.TransportError:
            return  # the server is gone: what it answered before is what counts


async def _load_and_kill(url: str, server: Server) -> Acknowledged:
    acked = Acknowledged()
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        clients = [asyncio.create_task(_client(http, acked, n)) for n in range(CLIENTS)]
        while len(acked.approved) < KILL_AFTER:
            assert not all(c.done() for c in clients), "the clients ended before the kill"
            await asyncio.sleep(0.005)
        server.process.send_signal(signal.SIGKILL)  # requests in flight, runs in their tools
        await asyncio.gather(*clients)
    return acked


def _threads(url: str) -> list[Thread]:
    async def main() -> list[Thread]:
        async with Runtime(store=url) as runtime:
            return [await runtime.get(s.thread_id) for s in await runtime.list(limit=10_000)]

    return asyncio.run(main())


def _approved(url: str) -> list[Thread]:
    return [t for t in _threads(url) if any(e.type == "approval" for e in t.events)]


def _ended(thread: Thread) -> bool:
    """Done, or asking a person about a deploy the kill cut off inside the tool."""
    pending = thread.pending
    asks = pending is not None and isinstance(pending.data, dict) and pending.data.get("reason") == "outcome_unknown"
    return thread.status == "done" or (thread.status == "waiting_human" and asks)


def _call(thread: Thread) -> str:
    [call_id] = [e.data["call_id"] for e in thread.events if e.type == "approval" and isinstance(e.data, dict)]
    return str(call_id)


def test_nothing_acknowledged_is_lost_and_nothing_runs_twice_after_kill_9(store_url: str, tmp_path: Path) -> None:
    receiver = Receiver(WEBHOOK_SECRET)
    effects = tmp_path / "effects"
    with serving(receiver.app()) as hooks:
        env = {"THREADLOOM_EFFECTS_FILE": str(effects), "THREADLOOM_WEBHOOK_SECRET": WEBHOOK_SECRET}
        options = ("-q", "--webhook", f"{hooks}/hook")
        server = Server(store_url, tmp_path / "serve.log", *options, env=env).wait_ready()
        try:
            acked = asyncio.run(_load_and_kill(server.url, server))
            assert server.wait() == -signal.SIGKILL
        finally:
            server.kill()

        server = Server(store_url, tmp_path / "again.log", *options, env=env).wait_ready()
        try:
            wait_for(lambda: all(_ended(t) for t in _approved(store_url)), "the approved threads to end", 300)
            threads = {t.id: t for t in _threads(store_url)}

            # Every 2xx'd launch is there with its first event, every 2xx'd approval is in its log.
            for thread_id, nonce in acked.launched.items():
                assert threads[thread_id].events[0].data == {"text": "deploy to production", "nonce": nonce}
            for thread_id, call_id in acked.approved.items():
                [approval] = [e.data for e in threads[thread_id].events if e.type == "approval"]
                assert approval == {"call_id": call_id, "approved": True, "edits": {}, "by": "key:admin"}

            # No deploy ran twice. Every approved one whose result is in the log ran once: those
            # approved before the kill and those whose approval was stored but never answered. One
            # the kill cut off inside the tool is not run again: it asks a person (outcome unknown).
            ran = Counter(effect.key for effect in read(effects))
            approved = _approved(store_url)
            assert set(ran.values()) <= {1} and set(ran) <= {_call(t) for t in approved}
            assert all(ran[_call(t)] == 1 for t in approved if t.status == "done")

            # Every change a subscription hears about was delivered (a webhook-id may come twice).
            expected = {(t.id, "thread.waiting_approval") for t in threads.values() if t.status != "ready"}
            expected |= {
                (t.id, f"thread.{t.status}") for t in threads.values() if t.status in ("done", "waiting_human")
            }

            def delivered() -> bool:
                return expected <= {(r.body["thread_id"], r.body["type"]) for r in receiver.delivered()}

            wait_for(delivered, "every queued webhook to be delivered", 300)
            assert server.stop() == 0, server.output()
        finally:
            server.kill()
    assert len(acked.approved) >= KILL_AFTER and len(acked.launched) < CLIENTS * ROUNDS
