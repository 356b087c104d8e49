"""`Worker`: a long-running service that claims runnable threads with a lease and runs them.

Any number of workers, in any number of processes and machines, can share one store: a thread is
leased to one worker at a time (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `FOR UPDATE SKIP LOCKED`),
the lease is renewed while the worker runs it and released when the thread stops. A claim returns
the claimed threads with their events (`claim_threads`: one statement on PostgreSQL), which the
worker runs without loading them again. A worker that dies leaves its leases to expire; another
worker then continues from what the log says (`tool_started` without a result is recovered as in
the loop). A worker that loses a lease while running (it stalled past the lease) stops that run at
once: its appends name it as the lease holder, and the store refuses them once another worker has
claimed the thread (`LeaseLost`).

Idle workers wait on the store: PostgreSQL wakes them with LISTEN/NOTIFY when a thread becomes
claimable; polling every `poll_seconds` is the fallback and finds due sleepers. On SIGTERM a worker
stops claiming, ends each run after its current step and releases the leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable

from .exceptions import LeaseLost, StoreError, ThreadDecodeError, ThreadloomError, UserError
from .runtime import Runtime
from .thread import Thread

__all__ = ["Worker"]

log = logging.getLogger("threadloom.worker")


class Worker:
    """Runs the threads of a runtime's store until stopped.

    Example:
        ```python
        import asyncio

        from threadloom import Agent, Event, Runtime, Worker
        from threadloom.models import ScriptedModel


        async def main() -> None:
            agent = Agent(name="a", model=ScriptedModel(['{"intent": "done_for_now", "message": "ok"}']))
            runtime = Runtime(store="memory://", agents=[agent])
            thread_id = await runtime.launch("a", Event("user_input", {"text": "hi"}))
            assert await Worker(runtime).run_until_idle() == 1
            assert (await runtime.get(thread_id)).status == "done"


        asyncio.run(main())
        ```
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        concurrency: int = 4,
        owner: str | None = None,
        lease_seconds: float = 30,
        poll_seconds: float = 0.5,
    ) -> None:
        """Configure a worker; nothing runs until `run`, `run_until_idle` or `serve`.

        Args:
            runtime: The runtime whose agents and store the worker uses.
            concurrency: Threads run at once by this worker.
            owner: The name leases are taken under; host, process id and a counter by default.
            lease_seconds: How long a claim lasts unless renewed (renewed every third of it).
            poll_seconds: How often to look for work when nothing announces any: due sleepers, other
                processes' appends on SQLite, and PostgreSQL when its LISTEN connection is lost.
                PostgreSQL (LISTEN/NOTIFY) and appends in this process wake the worker at once.
        """
        self.runtime = runtime
        self.concurrency = max(1, concurrency)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._skip: dict[str, float] = {}  # threads that failed here: not retried until this time
        self._unreadable: set[str] = set()  # threads set aside here (each logged once)

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run threads until `stop` is set, then let each run finish its current step and return.

        A run that is stopped ends after the event it is saving (a started tool first finishes and
        its result is saved); its thread stays `ready` and its lease is released, so another worker
        continues it at once.
        """
        store = await self.runtime.store()
        running: dict[str, asyncio.Task[None]] = {}
        # Listen before the first look for work: whatever becomes runnable afterwards wakes us.
        await store.wait_for_work(0)
        wake: asyncio.Future[None] | None = None
        stopping = asyncio.ensure_future(stop.wait())
        due_check = 0.0  # when to look for due sleepers next: once a poll, not after every run
        try:
            while not stop.is_set():
                now = time.monotonic()
                await self._fill(running, stop, wake_due=now >= due_check)
                if now >= due_check:
                    due_check = now + self.poll_seconds
                if wake is None:
                    wake = asyncio.ensure_future(store.wait_for_work(self.poll_seconds))
                waiters: set[asyncio.Future[object]] = {stopping, wake, *running.values()}  # pyright: ignore[reportAssignmentType]
                await asyncio.wait(waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
                if wake.done():
                    wake = None
                for thread_id in [t for t, task in running.items() if task.done()]:
                    task = running.pop(thread_id)
                    if not task.cancelled() and (error := task.exception()) is not None:
                        # A bug, not a thread's trouble (those are handled in _work): log it, go on.
                        log.error("worker %s failed on thread %s", self.owner, thread_id, exc_info=error)
        finally:
            stopping.cancel()
            if wake is not None:
                wake.cancel()
            if running:
                log.info(
                    "worker %s stopping: waiting for %d run(s) to finish their current step: %s",
                    self.owner,
                    len(running),
                    ", ".join(running),
                )
            if _cancelling():  # cancelled rather than stopped: so are the runs
                for task in running.values():
                    task.cancel()
            # Each run ends after its current step (or at once, if cancelled) and releases its lease.
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def run_until_idle(self) -> int:
        """Run claimed threads until none is runnable (for tests and scripts).

        Returns:
            How many thread runs it made.
        """
        runs = 0
        while True:
            running: dict[str, asyncio.Task[None]] = {}
            await self._fill(running)
            if not running:
                return runs
            await asyncio.gather(*running.values())
            runs += len(running)

    def serve(self, on_ready: Callable[[], object] | None = None) -> None:
        """Run until SIGTERM or SIGINT, then end each run after its current step: a worker process's entry point.

        Args:
            on_ready: Called once the signal handlers are in place: from then on SIGTERM stops the
                worker cleanly (before, it kills the process). A supervisor can wait for what it prints.
        """

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            if on_ready is not None:
                on_ready()
            try:
                await self.run(stop)
            finally:
                await self.runtime.aclose()

        asyncio.run(main())

    async def _fill(
        self, running: dict[str, asyncio.Task[None]], stop: asyncio.Event | None = None, *, wake_due: bool = True
    ) -> None:
        try:
            if wake_due:
                await self.runtime.wake_due()
            free = self.concurrency - len(running)
            if free <= 0:
                return
            store = await self.runtime.store()
            now = time.monotonic()
            self._skip = {t: until for t, until in self._skip.items() if until > now}
            agents = list(self.runtime.agents) or None  # claim only what this worker can run
            for _ in range(free + 1):  # each unreadable thread met is set aside, then claim again
                try:
                    claimed = await store.claim_threads(
                        self.owner, lease_seconds=self.lease_seconds, limit=free, agents=agents
                    )
                except ThreadDecodeError as exc:
                    await self._set_aside(exc)
                    continue
                break
            else:
                return
            for thread in claimed:
                if thread.id in self._skip or (stop is not None and stop.is_set()):
                    await store.release(thread.id, self.owner)  # not ours to run now
                    continue
                running[thread.id] = asyncio.create_task(self._work(thread, stop))
        except StoreError as exc:
            # The database restarts, the network drops: keep the service up and look again later.
            log.error("worker %s cannot reach the store, will try again: %s", self.owner, exc)

    async def _work(self, thread: Thread, stop: asyncio.Event | None) -> None:
        store = await self.runtime.store()
        thread_id = thread.id
        started = time.monotonic()
        run = asyncio.create_task(self.runtime.run_guarded(thread_id, stop=stop, owner=self.owner, loaded=thread))
        keeper = asyncio.create_task(self._keep_lease(thread_id, run))
        try:
            ran = await run
            log.info(
                "ran thread %s (agent %s): %s -> %s, %d events, %d ms",
                thread_id,
                thread.metadata.get("agent"),
                thread.status,
                ran.status,
                len(ran) - len(thread),
                (time.monotonic() - started) * 1000,
            )
        except ThreadDecodeError as exc:
            await self._set_aside(exc)
        except (asyncio.CancelledError, LeaseLost):
            if _cancelling():
                raise  # this worker is being cancelled, not the run for a lost lease
            log.warning("worker %s lost its lease on thread %s and stopped running it", self.owner, thread_id)
        except UserError as exc:
            # A thread this worker cannot run (its agent is not one of ours): leave it to others.
            log.error("worker %s cannot run thread %s: %s", self.owner, thread_id, exc)
            self._skip[thread_id] = time.monotonic() + 60
        except ThreadloomError as exc:
            # The store kept failing: the thread continues from its log, here or elsewhere, soon.
            log.error("worker %s stopped running thread %s: %s", self.owner, thread_id, exc)
            self._skip[thread_id] = time.monotonic() + 5
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            try:
                await store.release(thread_id, self.owner)
            except StoreError as exc:  # the lease then simply expires
                log.error("worker %s could not release thread %s: %s", self.owner, thread_id, exc)

    async def _set_aside(self, exc: ThreadDecodeError) -> None:
        """Mark a thread that cannot be read as such (claims skip it from now on) and log it once."""
        if exc.thread_id not in self._unreadable:
            self._unreadable.add(exc.thread_id)
            log.error("worker %s set thread %s aside as unreadable: %s", self.owner, exc.thread_id, exc)
        await (await self.runtime.store()).set_aside(exc.thread_id, str(exc))

    async def _keep_lease(self, thread_id: str, run: asyncio.Task[object]) -> None:
        store = await self.runtime.store()
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                kept = await store.renew(thread_id, self.owner, lease_seconds=self.lease_seconds)
            except StoreError as exc:
                log.warning("worker %s could not renew its lease on %s (will retry): %s", self.owner, thread_id, exc)
                continue  # if it lapses and another worker claims the thread, our appends are refused
            if not kept:
                log.warning("worker %s lost its lease on thread %s", self.owner, thread_id)
                run.cancel()  # another worker may hold it now: two runners must never both act
                return


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
