"""A receiver that answers a byte at a time: its attempts are bounded as a whole, and hold up no one else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from receiver import Receiver, wait_for
from serving import KEYS, SECRET, serving

from threadloom import Agent, Event, Runtime
from threadloom.models import ScriptedModel
from threadloom.server import Delivery, KeyRing, ServerConfig, Subscription, new_webhook_secret, open_tables, parse_keys
from threadloom.server._outbox import Backoff, deliver

DONE = frozenset({"done"})


def quick() -> Agent:
    """Done at once."""
    return Agent(name="quick", model=ScriptedModel(['{"intent": "done_for_now", "message": "hi"}'] * 100))


@contextlib.asynccontextmanager
async def trickling() -> AsyncGenerator[tuple[str, list[asyncio.StreamWriter]]]:
    """A raw HTTP server on 127.0.0.1 that reads a request, then answers one byte per 0.2 s, never finishing its headers."""
    open_: list[asyncio.StreamWriter] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            for byte in b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * 100_000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.2)
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", open_
    finally:
        server.close()


@dataclass
class Outbox:
    """Deliveries running to a trickling receiver and a good one, and what the test reads of them."""

    runtime: Runtime
    good: Receiver
    slow_url: str
    connections: list[asyncio.StreamWriter]

    async def done_thread(self, text: str) -> None:
        await self.runtime.launch("quick", Event("user_input", {"text": text}))
        await self.runtime.run_until_idle()

    async def slow(self) -> list[Delivery]:
        """The deliveries to the trickling receiver."""
        tables = await open_tables(await self.runtime.store())
        try:
            return [d for d in await tables.deliveries() if d.url == self.slow_url]
        finally:
            await tables.aclose()


@contextlib.asynccontextmanager
async def delivering(store_url: str, attempt_seconds: float) -> AsyncGenerator[Outbox]:
    """`deliver` running with attempts bounded by `attempt_seconds`, to a trickling and a good receiver of `done`."""
    secret = new_webhook_secret()
    good = Receiver(secret)
    async with trickling() as (slow_url, connections), Runtime(store=store_url, agents=[quick()]) as runtime:
        with serving(good.app()) as base:
            config = ServerConfig(
                runtime=runtime,
                keys=KeyRing(parse_keys(KEYS)),
                secret=SECRET,
                subscriptions=(
                    Subscription(slow_url, secret, statuses=DONE),
                    Subscription(f"{base}/hook", secret, statuses=DONE),
                ),
            )
            stop = asyncio.Event()
            backoff = Backoff(first=0.05, cap=0.1)
            sender = asyncio.create_task(
                deliver(config, stop, poll_seconds=0.05, backoff=backoff, attempt_seconds=attempt_seconds)
            )
            try:
                yield Outbox(runtime, good, slow_url, connections)
            finally:
                stop.set()
                for writer in connections:  # ends the attempts still reading, so `deliver` ends at once
                    writer.transport.abort()
                await asyncio.wait_for(sender, 30)


async def test_a_trickling_receivers_attempt_is_bounded_as_a_whole_and_retried(store_url: str) -> None:
    async with delivering(store_url, attempt_seconds=0.5) as outbox:
        await outbox.done_thread("first")
        await asyncio.to_thread(
            wait_for, lambda: len(outbox.good.delivered()) == 1, "the delivery to the good receiver"
        )
        # Each byte came well within httpx's read timeout; the attempt as a whole did not.
        seen: list[Delivery] = []
        async with asyncio.timeout(60):
            while not (seen and seen[0].attempts >= 2):
                seen = await outbox.slow()
                await asyncio.sleep(0.1)
        assert seen[0].state == "queued" and seen[0].last_error == "TimeoutError"


async def test_a_trickling_receiver_holds_up_no_other_delivery(store_url: str) -> None:
    async with delivering(store_url, attempt_seconds=120) as outbox:
        await outbox.done_thread("first")
        await asyncio.to_thread(
            wait_for, lambda: len(outbox.good.delivered()) == 1, "the first delivery to the good receiver"
        )
        await asyncio.to_thread(wait_for, lambda: outbox.connections, "an attempt to the trickling receiver")
        await outbox.done_thread("second")
        # The second change reaches the good receiver while the first attempt to the slow one is still open.
        await asyncio.to_thread(
            wait_for, lambda: len(outbox.good.delivered()) == 2, "the second delivery to the good receiver"
        )
        assert [d.attempts for d in await outbox.slow()][-1:] == [0]
