"""`Runtime`: launch, pause and resume agents through a store (factors 6 and 11).

Every method loads the thread, appends events and writes only those events back, naming the version
it extended. People (approve / reject / respond), webhooks (`send_event`) and `run_until_idle` may act
on one thread at once: a writer that loses the race reloads and tries again, so no decision is lost
and none is applied twice. Idempotency keys make a repeated delivery (a retried webhook, a double
click) a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from pydantic import JsonValue, ValidationError

from ._limits import RunLimits, contention_pause, failed_attempts, fingerprint, run_error
from ._saving import patiently, run_saving
from .agent import Agent
from .events import ERROR, RUN_ERROR, Event, storable_text
from .exceptions import (
    AlreadyDelivered,
    InvalidTransition,
    LeaseLost,
    NotStorable,
    StoreError,
    ThreadDecodeError,
    ThreadloomError,
    UserError,
    VersionConflict,
)
from .state import FAILED, Status
from .store import DEFAULT_URL, ThreadStore, ThreadSummary, open_store
from .thread import Thread

__all__ = ["WAKE_UP", "Runtime"]

WAKE_UP = "wake_up"
"""The event that ends a `wait_until` when its time has come."""

_T = TypeVar("_T")
_RETRIES = 20

log = logging.getLogger("threadloom.runtime")


class Runtime:
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
        self._runner: asyncio.Runner | None = None
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

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
            self._agent(agent)
        store = await self.store()
        meta: dict[str, JsonValue] = {**(metadata or {}), "agent": agent}
        request = fingerprint("launch", agent, event.type, event.data, thread_id, meta)
        if idempotency_key is not None:
            existing = await store.find_key(idempotency_key, scope=f"launch:{agent}", request=request)
            if existing is not None:
                return existing
        thread = Thread([event], thread_id=thread_id, metadata=meta)
        try:
            await store.append(thread, after=0, idempotency_key=idempotency_key, request=request)
        except AlreadyDelivered as exc:
            return exc.thread_id
        except NotStorable as exc:
            raise UserError(f"cannot launch {agent!r}: {exc}") from exc
        return thread.id

    async def get(self, thread_id: str) -> Thread:
        """The thread with all its events.

        Raises:
            ThreadNotFound: No thread has this id.
        """
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
        """Summaries of matching threads, least recently updated first (see `ThreadStore.list`)."""
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
            idempotency_key: A key for this delivery (a webhook's delivery id, a button click's id): a
                repeat with the same key changes nothing and returns the thread as it is.
            by: Who decided (an API key's name, `answer_link`): kept in the `approval` event.

        Returns:
            The thread after the approval.

        Raises:
            InvalidTransition: `call_id` is not the call waiting for approval.
            UserError: The merged arguments do not fit the tool's parameters (an unknown key, a
                wrong type): nothing is written.
        """

        def approve(thread: Thread) -> Thread:
            self._check_edits(thread, call_id, edits or {})
            return thread.approve(call_id, edits, by=by)

        request = fingerprint("approve", call_id, dict(edits or {}))
        return await self._change(thread_id, approve, idempotency_key, request)

    async def reject(
        self, thread_id: str, call_id: str, feedback: str, *, idempotency_key: str | None = None, by: str | None = None
    ) -> Thread:
        """Reject the pending call; the feedback goes to the model (see `Thread.reject`).

        Args:
            thread_id: The thread.
            call_id: The id of the `tool_call` waiting for approval (`thread.pending.id`).
            feedback: Why, for the model.
            idempotency_key: A key for this delivery (a webhook's delivery id, a button click's id): a
                repeat with the same key changes nothing and returns the thread as it is.
            by: Who decided: kept in the `approval` event.

        Returns:
            The thread after the rejection.

        Raises:
            InvalidTransition: `call_id` is not the call waiting for approval.
        """
        request = fingerprint("reject", call_id, feedback)
        return await self._change(thread_id, lambda t: t.reject(call_id, feedback, by=by), idempotency_key, request)

    async def respond(
        self, thread_id: str, request_id: str, text: str, *, idempotency_key: str | None = None, by: str | None = None
    ) -> Thread:
        """Answer the pending human request (see `Thread.respond`).

        Args:
            thread_id: The thread.
            request_id: The id of the request waiting for an answer (`thread.pending.id`).
            text: The answer.
            idempotency_key: A key for this delivery (a webhook's delivery id, a button click's id): a
                repeat with the same key changes nothing and returns the thread as it is.
            by: Who answered: kept in the `human_response` event.

        Returns:
            The thread after the answer.

        Raises:
            InvalidTransition: `request_id` is not the request waiting for an answer.
            UserError: The request is `multiple_choice` and `text` is none of its choices.
        """

        def respond(thread: Thread) -> Thread:
            _check_choice(thread, request_id, text)
            return thread.respond(request_id, text, by=by)

        return await self._change(thread_id, respond, idempotency_key, fingerprint("respond", request_id, text))

    async def send_event(self, thread_id: str, event: Event, *, idempotency_key: str | None = None) -> Thread:
        """Append an outside event (a webhook's result, a Slack reply) to a thread.

        A thread that waits for a person resumes; one that waits for approval keeps waiting.

        Args:
            thread_id: The thread.
            event: The event to append.
            idempotency_key: A key for this delivery (a webhook's delivery id, a button click's id): a
                repeat with the same key changes nothing and returns the thread as it is.

        Returns:
            The thread after the event.
        """
        request = fingerprint("send_event", event.type, event.data)
        return await self._change(thread_id, lambda t: t.append(event), idempotency_key, request)

    async def cancel(self, thread_id: str, reason: str = "cancelled", *, idempotency_key: str | None = None) -> Thread:
        """End a thread for good: a `failed` event with the reason. Nothing runs after it.

        Args:
            thread_id: The thread.
            reason: Why, for the log.
            idempotency_key: A key for this delivery (a webhook's delivery id, a button click's id): a
                repeat with the same key changes nothing and returns the thread as it is.

        Returns:
            The failed thread.
        """
        failed = Event(FAILED, {"reason": reason})
        return await self._change(thread_id, lambda t: t.append(failed), idempotency_key, fingerprint("cancel", reason))

    async def fork(self, thread_id: str, at: str) -> str:
        """Copy a thread up to and including event `at` into a new thread (see `Thread.fork`).

        Returns:
            The new thread's id.
        """
        fork = (await self.get(thread_id)).fork(at=at)
        await (await self.store()).append(fork, after=0)
        return fork.id

    async def _change(
        self, thread_id: str, change: Callable[[Thread], Thread], key: str | None, request: str
    ) -> Thread:
        """Apply `change` to the latest version, retrying (with backoff) when another writer got there first.

        A key belongs to the thread: `find_key` and the append raise `IdempotencyKeyReused` for a
        key this thread saw with another request.
        """
        store = await self.store()
        scope = f"thread:{thread_id}"
        for attempt in range(_RETRIES):
            if key is not None and await store.find_key(key, scope=scope, request=request) is not None:
                return await store.load(thread_id)  # delivered before: the same call has no second effect
            thread = await store.load(thread_id)
            try:
                changed = change(thread)
            except InvalidTransition:
                if key is not None and await store.find_key(key, scope=scope, request=request) is not None:
                    return await store.load(thread_id)  # the same delivery won a race a moment ago
                raise
            try:
                await store.append(changed, after=len(thread), idempotency_key=key, request=request)
            except VersionConflict:
                await contention_pause(attempt)
                continue
            except AlreadyDelivered:
                return await store.load(thread_id)
            except NotStorable as exc:
                raise UserError(str(exc)) from exc
            return changed
        raise ThreadloomError(f"thread {thread_id!r} kept changing under {_RETRIES} attempts to write to it")

    def _check_edits(self, thread: Thread, call_id: str, edits: Mapping[str, JsonValue]) -> None:
        """Refuse edits under which the pending call's arguments no longer fit its tool (when this runtime knows it)."""
        pending = thread.pending
        agent = self.agents.get(str(thread.metadata.get("agent")))
        if pending is None or pending.id != call_id or agent is None or not isinstance(pending.data, dict):
            return  # `Thread.approve` says what is wrong, or no tool is known here to check against
        tool = agent.tools.get(str(pending.data.get("intent")))
        arguments = pending.data.get("arguments")
        if tool is None or not isinstance(arguments, dict):
            return
        fields = tool.arguments.model_fields
        listing = ", ".join(f"{name}: {_type_name(info.annotation)}" for name, info in fields.items()) or "none"
        unknown = sorted(set(edits) - set(fields))
        if unknown:
            raise UserError(f"tool {tool.name!r} has no parameter {unknown[0]!r}; its parameters: {listing}")
        try:
            tool.arguments.model_validate({**arguments, **edits})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise UserError(f"edits do not fit tool {tool.name!r} ({problems}); its parameters: {listing}") from None

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
        thread = loaded if loaded is not None else await patiently(lambda: store.load(thread_id))
        agent = self._agent(str(thread.metadata.get("agent")))
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
        thread = loaded if loaded is not None else await patiently(lambda: store.load(thread_id))
        self._agent(str(thread.metadata.get("agent")))
        try:
            ran = await self.run_thread(thread_id, stop=stop, owner=owner, loaded=thread)
        except LeaseLost:
            raise
        except NotStorable as exc:
            return await self._record_failure(thread_id, type(exc).__name__, str(exc), owner)
        except StoreError:
            raise
        except Exception as exc:  # a bug here or in user code: recorded, retried later, then given up
            return await self._record_failure(thread_id, type(exc).__name__, str(exc), owner)
        last = ran.events[-1] if ran.events else None
        if ran.status == "ready" and not (stop is not None and stop.is_set()) and last is not None:
            if last.type != RUN_ERROR:
                data = last.data if last.type == ERROR and isinstance(last.data, dict) else {}
                error_type = str(data.get("error_type") or "RunStopped")
                message = str(data.get("message") or "the run stopped with the thread still ready")
                return await self._record_failure(thread_id, error_type, message, owner)
        return ran

    async def _record_failure(self, thread_id: str, error_type: str, message: str, owner: str | None) -> Thread:
        """Append the `run_error` of a failed run (and `failed`, at the last attempt) to the stored thread."""
        store = await self.store()
        now = datetime.now(UTC)
        for attempt in range(_RETRIES):
            stored = await patiently(lambda: store.load(thread_id))
            if stored.status != "ready":
                return stored  # moved on meanwhile (cancelled, say): nothing to retry
            tries = failed_attempts(stored) + 1
            if tries >= self.limits.attempts:
                reason = storable_text(f"{tries} runs failed in a row; the last: {error_type}: {message}")[:600]
                changed = stored.append(run_error(error_type, message, tries, None))
                changed = changed.append(Event(FAILED, {"reason": reason}))
                log.error("thread %s failed for good: %s", thread_id, reason)
            else:
                retry_at = now + timedelta(seconds=self.limits.backoff(tries))
                changed = stored.append(run_error(error_type, message, tries, retry_at))
                log.warning(
                    "thread %s: run %d failed (%s: %s); retried after %s",
                    thread_id,
                    tries,
                    error_type,
                    message[:200],
                    retry_at.isoformat(),
                )
            try:
                await patiently(partial(store.append, changed, after=len(stored), owner=owner))
            except VersionConflict:
                await contention_pause(attempt)
                continue
            return changed
        raise ThreadloomError(f"thread {thread_id!r} kept changing under {_RETRIES} attempts to write to it")

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
        store = await self.store()
        tried: set[str] = set()
        runs = 0
        while stop is None or not stop.is_set():
            await self.wake_due()
            now = datetime.now(UTC)
            ready = [
                s
                for s in await store.list(status="ready", limit=1000)
                if s.thread_id not in tried and s.unreadable is None and (s.retry_at is None or s.retry_at <= now)
            ]
            if not ready:
                return runs
            for summary in ready:
                if stop is not None and stop.is_set():
                    break
                try:
                    thread = await self.run_guarded(summary.thread_id, stop=stop)
                except ThreadDecodeError as exc:
                    log.error("thread %s cannot be read; set aside: %s", summary.thread_id, exc)
                    await store.set_aside(summary.thread_id, str(exc))
                    tried.add(summary.thread_id)
                    continue
                except UserError as exc:  # its agent is not one of ours
                    log.error("cannot run thread %s: %s", summary.thread_id, exc)
                    tried.add(summary.thread_id)
                    continue
                runs += 1
                if thread.status == "ready":
                    tried.add(summary.thread_id)
        return runs

    async def wake_due(self, now: datetime | None = None) -> list[str]:
        """Wake every sleeping thread whose `wake_at` has come: append a `wake_up` event to each.

        Each wake-up carries an idempotency key made of the thread and its version, so two workers
        waking the same thread wake it once.

        Returns:
            The ids of the threads woken.
        """
        now = now or datetime.now(UTC)
        woken: list[str] = []
        for summary in await (await self.store()).list(status="sleeping", wake_before=now, limit=1000):
            key = f"wake:{summary.thread_id}:{summary.events}"
            try:
                await self.send_event(
                    summary.thread_id, Event(WAKE_UP, {"wake_at": _iso(summary.wake_at)}), idempotency_key=key
                )
            except ThreadDecodeError as exc:  # left to the runs that set it aside
                log.error("cannot wake thread %s: %s", summary.thread_id, exc)
                continue
            woken.append(summary.thread_id)
        return woken

    def _agent(self, name: str) -> Agent:
        try:
            return self.agents[name]
        except KeyError:
            known = ", ".join(sorted(self.agents)) or "none"
            raise UserError(f"no agent named {name!r} in this runtime (it has: {known})") from None

    # -- for code without an event loop -----------------------------------------------------------
    # One event loop serves every *_sync call of a runtime, so the store (a PostgreSQL pool is bound
    # to the loop that opened it) stays usable from call to call. `close()` ends both.

    def launch_sync(
        self,
        agent: str,
        event: Event,
        *,
        thread_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: Mapping[str, JsonValue] | None = None,
    ) -> str:
        """`launch` without an event loop."""
        return self._sync(
            self.launch(agent, event, thread_id=thread_id, idempotency_key=idempotency_key, metadata=metadata)
        )

    def get_sync(self, thread_id: str) -> Thread:
        """`get` without an event loop."""
        return self._sync(self.get(thread_id))

    def list_sync(
        self,
        *,
        status: Status | None = None,
        agent: str | None = None,
        updated_after: datetime | None = None,
        limit: int = 100,
    ) -> list[ThreadSummary]:
        """`list` without an event loop."""
        return self._sync(self.list(status=status, agent=agent, updated_after=updated_after, limit=limit))

    def approve_sync(
        self,
        thread_id: str,
        call_id: str,
        edits: Mapping[str, JsonValue] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Thread:
        """`approve` without an event loop."""
        return self._sync(self.approve(thread_id, call_id, edits, idempotency_key=idempotency_key))

    def reject_sync(self, thread_id: str, call_id: str, feedback: str, *, idempotency_key: str | None = None) -> Thread:
        """`reject` without an event loop."""
        return self._sync(self.reject(thread_id, call_id, feedback, idempotency_key=idempotency_key))

    def respond_sync(self, thread_id: str, request_id: str, text: str, *, idempotency_key: str | None = None) -> Thread:
        """`respond` without an event loop."""
        return self._sync(self.respond(thread_id, request_id, text, idempotency_key=idempotency_key))

    def send_event_sync(self, thread_id: str, event: Event, *, idempotency_key: str | None = None) -> Thread:
        """`send_event` without an event loop."""
        return self._sync(self.send_event(thread_id, event, idempotency_key=idempotency_key))

    def cancel_sync(self, thread_id: str, reason: str = "cancelled", *, idempotency_key: str | None = None) -> Thread:
        """`cancel` without an event loop."""
        return self._sync(self.cancel(thread_id, reason, idempotency_key=idempotency_key))

    def fork_sync(self, thread_id: str, at: str) -> str:
        """`fork` without an event loop."""
        return self._sync(self.fork(thread_id, at))

    def run_until_idle_sync(self) -> int:
        """`run_until_idle` without an event loop.

        Ctrl-C (SIGINT) stops it as gracefully as a worker: each run ends after the event it is
        saving (a running tool finishes first and its result is saved), then `KeyboardInterrupt`
        is raised. A second Ctrl-C stops at once.
        """
        return self._sync(self._interruptible())

    async def _interruptible(self) -> int:
        stop = asyncio.Event()
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def interrupted() -> None:
            if stop.is_set() and task is not None:
                task.cancel()  # the second Ctrl-C
            stop.set()

        try:
            loop.add_signal_handler(signal.SIGINT, interrupted)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            return await self._run_until_idle(None)
        try:
            runs = await self._run_until_idle(stop)
        finally:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signal.SIGINT)
        if stop.is_set():
            raise KeyboardInterrupt
        return runs

    def close(self) -> None:
        """`aclose` without an event loop: close the store and the loop the `*_sync` methods use."""
        self._sync(self.aclose())
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def _sync(self, work: Coroutine[Any, Any, _T]) -> _T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(work)
        work.close()  # never awaited: close it so Python does not warn
        raise UserError("*_sync methods cannot run inside an event loop; await the async method instead")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _type_name(annotation: object) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _check_choice(thread: Thread, request_id: str, text: str) -> None:
    """Refuse an answer to a `multiple_choice` request that is none of its choices."""
    pending = thread.pending
    if pending is None or pending.id != request_id or not isinstance(pending.data, dict):
        return  # `Thread.respond` says what is wrong
    choices = pending.data.get("choices")
    if pending.data.get("format") != "multiple_choice" or not isinstance(choices, list) or not choices:
        return
    if text.strip().casefold() not in {str(c).strip().casefold() for c in choices}:
        listed = ", ".join(repr(c) for c in choices)
        raise UserError(f"the answer {text!r} is none of the request's choices: {listed}")
