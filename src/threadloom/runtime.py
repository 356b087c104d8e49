"""`Runtime`: launch, pause and resume agents through a store (factors 6 and 11).

Every method loads the thread, appends events and writes only those events back, naming the version
it extended; people, webhooks and runs may act on one thread at once (`_changes` says how none is
lost or applied twice, `_running` what becomes of a run that fails).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import partial

from pydantic import JsonValue

from . import _changes, _running
from ._limits import RunLimits
from ._saving import run_saving
from ._sync import SyncCalls, interruptible
from .agent import Agent
from .events import WAKE_UP, Event, id_problem
from .exceptions import ThreadNotFound, UserError
from .state import Status
from .store import DEFAULT_URL, ThreadStore, ThreadSummary, open_store
from .store.base import check_listing
from .thread import Thread

__all__ = ["WAKE_UP", "Runtime"]


class Runtime(SyncCalls):
    """Agents and a store: start threads, record what people and systems say, and drive the agents.

    Example:
        ```python
        import asyncio

        from threadloom import Agent, Event
        from threadloom.models import ScriptedModel
        from threadloom.runtime import Runtime


        async def main() -> None:
            agent = Agent(name="greeter", model=ScriptedModel(['{"intent": "done_for_now", "message": "hi"}']))
            runtime = Runtime(store="memory://", agents=[agent])
            thread_id = await runtime.launch("greeter", Event("user_input", {"text": "hello"}))
            await runtime.run_until_idle()
            assert (await runtime.get(thread_id)).status == "done"
            await runtime.aclose()


        asyncio.run(main())
        ```
    """

    def __init__(
        self, store: str | ThreadStore = DEFAULT_URL, agents: Sequence[Agent] = (), *, limits: RunLimits | None = None
    ) -> None:
        """Configure a runtime; the store opens on first use.

        Args:
            store: A store URL (`memory://`, `sqlite:///path.db`, `postgresql://...`) or a `ThreadStore`.
            agents: The agents it can run, found by name.
            limits: How often a thread's runs may fail and how fast it may call its model and tools
                (see `RunLimits`; docs/runtime.md states the defaults).

        Raises:
            UserError: Two agents share a name.
        """
        self._store_spec = store
        self._store: ThreadStore | None = None if isinstance(store, str) else store
        # Callers that start at once (a burst of launches) must share one store, not open one each.
        self._opening = asyncio.Lock()
        self.limits = limits or RunLimits()
        self.agents: dict[str, Agent] = {}
        for agent in agents:
            if agent.name in self.agents:
                raise UserError(f"two agents are named {agent.name!r}; a runtime finds agents by name")
            self.agents[agent.name] = agent

    async def store(self) -> ThreadStore:
        """The store, opened on first use."""
        if self._store is None:
            async with self._opening:
                if self._store is None:
                    self._store = await open_store(str(self._store_spec))
        return self._store

    async def aclose(self) -> None:
        """Close the store."""
        if self._store is not None:
            await self._store.aclose()
            self._store = None

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- starting and reading ----------------------------------------------------------------

    async def launch(
        self,
        agent: str,
        event: Event,
        *,
        thread_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: Mapping[str, JsonValue] | None = None,
    ) -> str:
        """Start a thread for `agent` with its first event; it runs at the next `run_until_idle` (or worker).

        Args:
            agent: The agent's name.
            event: The first event (a Slack message, an email, a cron tick, ...).
            thread_id: The thread's id, if the caller picks it.
            idempotency_key: Launch at most once per key and agent; a repeat returns the first
                thread's id. The same key with another event or metadata raises `IdempotencyKeyReused`.
            metadata: JSON facts to keep with the thread (`agent` is added).

        Returns:
            The thread's id.

        Raises:
            UserError: The runtime has agents and none has that name (a runtime without agents, a
                web handler say, launches by name; the workers must know the agent), or a value
                the store cannot hold; nothing is written.
            IdempotencyKeyReused: The key launched another request for this agent before.
        """
        if self.agents:
            _running.find_agent(self.agents, agent)
        return await _changes.launch(
            await self.store(), agent, event, thread_id=thread_id, idempotency_key=idempotency_key, metadata=metadata
        )

    async def get(self, thread_id: str) -> Thread:
        """The thread with all its events.

        Raises:
            ThreadNotFound: No thread has this id.
        """
        if id_problem(thread_id, "thread id"):
            raise ThreadNotFound(thread_id)  # no store holds such an id (PostgreSQL would refuse to look)
        return await (await self.store()).load(thread_id)

    async def list(
        self,
        *,
        status: Status | None = None,
        agent: str | None = None,
        updated_after: datetime | None = None,
        before: tuple[datetime, str] | None = None,
        newest_first: bool = False,
        limit: int = 100,
    ) -> list[ThreadSummary]:
        """Summaries of matching threads, least recently updated first (see `ThreadStore.list`).

        A negative `limit`, or a time without a timezone, is a `UserError`.
        """
        check_listing(limit, updated_after, before)
        store = await self.store()
        return await store.list(
            status=status,
            agent=agent,
            updated_after=updated_after,
            before=before,
            newest_first=newest_first,
            limit=limit,
        )

    # -- people and systems --------------------------------------------------------------------

    async def approve(
        self,
        thread_id: str,
        call_id: str,
        edits: Mapping[str, JsonValue] | None = None,
        *,
        idempotency_key: str | None = None,
        by: str | None = None,
    ) -> Thread:
        """Approve the pending call (see `Thread.approve`); the call runs at the next run.

        Args:
            thread_id: The thread.
            call_id: The id of the `tool_call` waiting for approval (`thread.pending.id`).
            edits: Arguments to change before the call runs.
            idempotency_key: A delivery's key (a webhook's delivery id, a click's id): a repeat with
                it changes nothing and returns the thread as it is.
            by: Who decided (an API key's name, `answer_link`): kept in the `approval` event.

        Returns:
            The thread after the approval.

        Raises:
            InvalidTransition: `call_id` is not the call waiting for approval.
            UserError: The merged arguments do not fit the tool's parameters (an unknown key, a
                wrong type): nothing is written.
        """
        store = await self.store()
        return await _changes.approve(store, self.agents, thread_id, call_id, edits, key=idempotency_key, by=by)

    async def reject(
        self, thread_id: str, call_id: str, feedback: str, *, idempotency_key: str | None = None, by: str | None = None
    ) -> Thread:
        """Reject the pending call; the feedback goes to the model (see `Thread.reject`).

        Args:
            thread_id: The thread.
            call_id: The id of the `tool_call` waiting for approval (`thread.pending.id`).
            feedback: Why, for the model.
            idempotency_key: A delivery's key (a webhook's delivery id, a click's id): a repeat with
                it changes nothing and returns the thread as it is.
            by: Who decided: kept in the `approval` event.

        Returns:
            The thread after the rejection.

        Raises:
            InvalidTransition: `call_id` is not the call waiting for approval.
        """
        return await _changes.reject(await self.store(), thread_id, call_id, feedback, key=idempotency_key, by=by)

    async def respond(
        self, thread_id: str, request_id: str, text: str, *, idempotency_key: str | None = None, by: str | None = None
    ) -> Thread:
        """Answer the pending human request (see `Thread.respond`).

        Args:
            thread_id: The thread.
            request_id: The id of the request waiting for an answer (`thread.pending.id`).
            text: The answer.
            idempotency_key: A delivery's key (a webhook's delivery id, a click's id): a repeat with
                it changes nothing and returns the thread as it is.
            by: Who answered: kept in the `human_response` event.

        Returns:
            The thread after the answer.

        Raises:
            InvalidTransition: `request_id` is not the request waiting for an answer.
            UserError: The request is `multiple_choice` and `text` is none of its choices.
        """
        return await _changes.respond(await self.store(), thread_id, request_id, text, key=idempotency_key, by=by)

    async def send_event(
        self, thread_id: str, event: Event, *, idempotency_key: str | None = None, patience: float = 30.0
    ) -> Thread:
        """Append an outside event (a webhook's result, a Slack reply) to a thread.

        A thread waiting for a person resumes; one waiting for approval keeps waiting. While a tool
        of the thread runs, the event waits for its result: it lands after the step (a note never waits).

        Args:
            thread_id: The thread.
            event: The event to append.
            idempotency_key: A delivery's key (a webhook's delivery id, a click's id): a repeat with
                it changes nothing and returns the thread as it is.
            patience: How long the event may wait for a running tool, in seconds (then `ThreadBusy`,
                nothing written).

        Returns:
            The thread after the event.
        """
        return await _changes.append_event(await self.store(), thread_id, event, idempotency_key, patience=patience)

    async def cancel(self, thread_id: str, reason: str = "cancelled", *, idempotency_key: str | None = None) -> Thread:
        """End a thread for good: a `failed` event with the reason. Nothing runs after it.

        Args:
            thread_id: The thread.
            reason: Why, for the log.
            idempotency_key: A delivery's key (a webhook's delivery id, a click's id): a repeat with
                it changes nothing and returns the thread as it is.

        Returns:
            The failed thread.

        Raises:
            InvalidTransition: The thread has ended already (`done` or `failed`); a repeat of the
                delivery that ended it returns the thread instead.
        """
        return await _changes.cancel(await self.store(), thread_id, reason, idempotency_key)

    async def fork(self, thread_id: str, at: str) -> str:
        """Copy a thread up to and including event `at` into a new thread (see `Thread.fork`); its id."""
        fork = (await self.get(thread_id)).fork(at=at)
        await (await self.store()).append(fork, after=0)
        return fork.id

    # -- running ------------------------------------------------------------------------------

    async def run_thread(
        self,
        thread_id: str,
        *,
        stop: asyncio.Event | None = None,
        owner: str | None = None,
        loaded: Thread | None = None,
    ) -> Thread:
        """Run one thread's agent until the thread must stop, saving every event as it happens.

        Args:
            thread_id: The thread.
            stop: When set, the run ends after the events it is saving, unless they hold a
                `tool_started` (the tool then runs and its result is saved first: stopping in
                between would leave its outcome unknown). The thread stays `ready` for any runner.
            owner: The worker whose lease this run is under: every save checks that the lease is
                still its own, so a worker that stalled past its lease cannot take a step (run a
                tool) that the worker now holding the thread takes too.
            loaded: The thread as the caller just read it (a worker's `claim_threads`), so that it is
                not loaded again. If it is older than the stored thread, the first save conflicts and
                the run goes on from the stored one.

        Returns:
            The thread as this run left it.

        Raises:
            UserError: The thread's agent is not one of this runtime's.
            LeaseLost: `owner` no longer holds the thread's lease; the run stopped before its next event.
            StoreError: The store kept failing (it is retried for about 13 seconds first).
        """
        store = await self.store()
        agent, thread = await _running.to_run(store, self.agents, thread_id, loaded)
        return await run_saving(agent, store, thread, stop=stop, owner=owner, limits=self.limits)

    async def run_guarded(
        self,
        thread_id: str,
        *,
        stop: asyncio.Event | None = None,
        owner: str | None = None,
        loaded: Thread | None = None,
    ) -> Thread:
        """`run_thread`, with a run that fails recorded in the thread instead of raised: what workers call.

        A run that ends in an exception nobody expected, or that could not go on (the thread is
        still `ready` and was not asked to stop), appends a `run_error` event with the time it may
        be tried again (exponential backoff with jitter, see `RunLimits`); after `limits.attempts`
        such runs in a row the thread fails for good.

        Raises:
            UserError: The thread's agent is not one of this runtime's (checked before running).
            ThreadDecodeError: The thread cannot be read.
            LeaseLost: `owner` no longer holds the lease.
            StoreError: The store kept failing (its trouble, not the thread's).
        """
        store = await self.store()
        agent, thread = await _running.to_run(store, self.agents, thread_id, loaded)
        return await _running.run_guarded(agent, store, thread, stop=stop, owner=owner, limits=self.limits)

    async def run_until_idle(self) -> int:
        """Run every `ready` thread until none is left; for tests, scripts and the demo.

        A thread that stops while still `ready` (its model could not be asked) is not retried in
        the same call (its `run_error` names when it may be), so this always returns. A thread
        that cannot be read is set aside, and one whose agent this runtime does not know is left
        alone, each named in the log; the others run. It takes no leases: beside workers on the
        same store, use `Worker(runtime).run_until_idle()` instead.

        Returns:
            How many thread runs it made.
        """
        return await self._run_until_idle(None)

    async def _run_until_idle(self, stop: asyncio.Event | None) -> int:
        run = partial(self.run_guarded, stop=stop)
        return await _running.run_until_idle(await self.store(), run, self.wake_due, stop)

    async def wake_due(self, now: datetime | None = None) -> list[str]:
        """Append a `wake_up` to every sleeping thread whose `wake_at` has come; the ids of those woken.

        Each is checked again on the stored thread (still asleep, its time come), so two workers
        waking the same thread wake it once and a thread that moved on since the listing is left alone.
        """
        return await _running.wake_due(await self.store(), now or datetime.now(UTC))

    # -- for code without an event loop (one loop serves every call: see `SyncCalls`) ---------------

    launch_sync = SyncCalls._blocking(launch)
    get_sync = SyncCalls._blocking(get)
    list_sync = SyncCalls._blocking(list)
    approve_sync = SyncCalls._blocking(approve)
    reject_sync = SyncCalls._blocking(reject)
    respond_sync = SyncCalls._blocking(respond)
    send_event_sync = SyncCalls._blocking(send_event)
    cancel_sync = SyncCalls._blocking(cancel)
    fork_sync = SyncCalls._blocking(fork)

    def run_until_idle_sync(self) -> int:
        """`run_until_idle` without an event loop.

        Ctrl-C (SIGINT) stops it as gracefully as a worker: each run ends after the event it is
        saving (a running tool finishes first and its result is saved), then `KeyboardInterrupt`
        is raised. A second Ctrl-C stops at once.
        """
        return self._sync(interruptible(self._run_until_idle))
