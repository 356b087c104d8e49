"""The runtime's stories, on every store: launch, pause, resume from elsewhere, exactly once."""

import asyncio
import inspect
from pathlib import Path
from typing import Literal

import pytest
from pydantic import JsonValue

from threadloom import Agent, Event, InvalidTransition, LeaseLost, Runtime, Thread, UserError, tool
from threadloom.exceptions import IdempotencyKeyReused, StoreError
from threadloom.models import ScriptedModel
from threadloom.store import MemoryStore, ThreadStore

DEPLOY = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'
DONE = '{"intent": "done_for_now", "message": "deployed"}'
effects: list[str] = []


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
    """Deploy a tag."""
    effects.append(f"{tag}@{environment}")
    return "ok"


def deploy_bot(*outputs: str) -> Agent:
    return Agent(name="deploy_bot", model=ScriptedModel(outputs or (DEPLOY, DONE)), tools=[deploy_backend])


@pytest.fixture(autouse=True)
def _clear() -> None:
    effects.clear()


async def test_launch_pause_approve_resume(store: ThreadStore) -> None:
    runtime = Runtime(store=store, agents=[deploy_bot()])
    thread_id = await runtime.launch("deploy_bot", Event("slack_message", {"text": "deploy"}))
    assert await runtime.run_until_idle() == 1
    thread = await runtime.get(thread_id)
    assert thread.status == "waiting_approval" and effects == []
    assert thread.pending is not None
    [summary] = await runtime.list(status="waiting_approval")
    assert (summary.thread_id, summary.agent) == (thread_id, "deploy_bot")
    await runtime.approve(thread_id, thread.pending.id)
    await runtime.run_until_idle()
    done = await runtime.get(thread_id)
    assert done.status == "done" and effects == ["v1.2.3@production"]
    assert [e.type for e in done.events] == [
        "slack_message", "tool_call", "approval", "tool_started", "tool_response", "done_for_now"
    ]  # fmt: skip
    assert await runtime.run_until_idle() == 0


async def test_approve_from_another_runtime_on_the_same_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/threads.db"
    first = Runtime(store=url, agents=[deploy_bot()])
    thread_id = await first.launch("deploy_bot", Event("slack_message", {"text": "deploy"}))
    await first.run_until_idle()
    await first.aclose()

    other = Runtime(store=url)  # a CLI or web process: no agents needed to approve
    thread = await other.get(thread_id)
    assert thread.pending is not None
    await other.approve(thread_id, thread.pending.id)
    await other.aclose()

    worker = Runtime(store=url, agents=[deploy_bot(DONE)])
    await worker.run_until_idle()
    assert (await worker.get(thread_id)).status == "done" and effects == ["v1.2.3@production"]
    await worker.aclose()


async def test_one_idempotency_key_one_effect(store: ThreadStore) -> None:
    runtime = Runtime(store=store, agents=[deploy_bot()])
    first = await runtime.launch("deploy_bot", Event("slack_message", {"text": "go"}), idempotency_key="slack-1")
    again = await runtime.launch("deploy_bot", Event("slack_message", {"text": "go"}), idempotency_key="slack-1")
    assert first == again and len(await runtime.list()) == 1
    await runtime.run_until_idle()
    thread = await runtime.get(first)
    assert thread.pending is not None
    call_id = thread.pending.id
    results = await asyncio.gather(
        *(runtime.approve(first, call_id, idempotency_key="click-1") for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, Thread) for r in results)
    thread = await runtime.get(first)
    assert [e.type for e in thread.events].count("approval") == 1


async def test_a_second_decision_without_a_key_is_refused_clearly(store: ThreadStore) -> None:
    runtime = Runtime(store=store, agents=[deploy_bot()])
    thread_id = await runtime.launch("deploy_bot", Event("slack_message", {"text": "go"}))
    await runtime.run_until_idle()
    thread = await runtime.get(thread_id)
    assert thread.pending is not None
    await runtime.approve(thread_id, thread.pending.id)
    with pytest.raises(InvalidTransition, match="nothing waits to reject"):
        await runtime.reject(thread_id, thread.pending.id, "too late")


async def test_send_event_resumes_a_thread_waiting_for_a_person(store: ThreadStore) -> None:
    asks = '{"intent": "request_more_information", "message": "Which environment?"}'
    runtime = Runtime(store=store, agents=[deploy_bot(asks, DONE)])
    thread_id = await runtime.launch("deploy_bot", Event("slack_message", {"text": "deploy"}))
    await runtime.run_until_idle()
    assert (await runtime.get(thread_id)).status == "waiting_human"
    await runtime.send_event(thread_id, Event("slack_message", {"text": "staging"}), idempotency_key="m2")
    await runtime.send_event(thread_id, Event("slack_message", {"text": "staging"}), idempotency_key="m2")
    await runtime.run_until_idle()
    thread = await runtime.get(thread_id)
    assert thread.status == "done" and [e.type for e in thread.events].count("slack_message") == 2


async def test_respond_cancel_and_fork(store: ThreadStore) -> None:
    asks = '{"intent": "request_human_input", "question": "Deploy now?"}'
    runtime = Runtime(store=store, agents=[deploy_bot(asks, DONE)])
    thread_id = await runtime.launch("deploy_bot", Event("user_input", {"text": "deploy"}))
    await runtime.run_until_idle()
    thread = await runtime.get(thread_id)
    assert thread.pending is not None
    fork_id = await runtime.fork(thread_id, at=thread.events[0].id)
    fork = await runtime.get(fork_id)
    assert len(fork) == 1 and fork.metadata["forked_from"] == thread_id and fork.metadata["agent"] == "deploy_bot"
    await runtime.respond(thread_id, thread.pending.id, "yes")
    await runtime.cancel(fork_id, "not needed")
    await runtime.run_until_idle()
    assert (await runtime.get(thread_id)).status == "done"
    assert (await runtime.get(fork_id)).status == "failed"


async def test_events_that_arrive_while_a_tool_runs_are_kept_and_land_after_its_result(store: ThreadStore) -> None:
    runtime = Runtime(store=store)
    sent: list[asyncio.Task[Thread]] = []

    @tool
    async def slow_lookup() -> str:
        """Look something up while someone writes to the thread."""
        [summary] = await runtime.list()
        # Another writer, while the tool runs: its event waits for the tool's result, not inside the step.
        sent.append(asyncio.create_task(runtime.send_event(summary.thread_id, Event("slack_message", "any news?"))))
        await asyncio.sleep(0.05)
        assert not sent[0].done()
        return "found"

    model = ScriptedModel(['{"intent": "slow_lookup"}', DONE, DONE])
    runtime.agents["looker"] = Agent(name="looker", model=model, tools=[slow_lookup])
    thread_id = await runtime.launch("looker", Event("user_input", {"text": "look"}))
    await runtime.run_until_idle()
    await sent[0]
    await runtime.run_until_idle()
    types = [e.type for e in (await runtime.get(thread_id)).events]
    assert types[:4] == ["user_input", "tool_call", "tool_started", "tool_response"]  # the step, whole
    assert types.count("slack_message") == 1 and types[-1] == "done_for_now"


async def test_a_model_that_cannot_answer_does_not_spin(store: ThreadStore) -> None:
    runtime = Runtime(store=store, agents=[deploy_bot("not json", "still not", "nope", "no")])
    thread_id = await runtime.launch("deploy_bot", Event("user_input", {"text": "go"}))
    short = Runtime(store=store, agents=[Agent(name="deploy_bot", model=ScriptedModel([]))])
    assert await short.run_until_idle() == 1  # the script is empty: one run, one error event, no loop
    events = (await runtime.get(thread_id)).events
    assert [e.type for e in events[-2:]] == ["error", "run_error"]  # retried later, with backoff
    record = events[-1].data
    assert isinstance(record, dict) and (record["error_type"], record["attempt"]) == ("ScriptExhausted", 1)


class _CommitsThenDrops(MemoryStore):
    """A memory store whose first append ending in a `run_error` commits, then loses its connection."""

    dropped = False

    async def append(
        self,
        thread: Thread,
        *,
        after: int,
        idempotency_key: str | None = None,
        request: str | None = None,
        owner: str | None = None,
        sync: bool = True,
    ) -> None:
        await super().append(
            thread, after=after, idempotency_key=idempotency_key, request=request, owner=owner, sync=sync
        )
        if not self.dropped and thread.events[-1].type == "run_error":
            self.dropped = True
            raise StoreError("connection lost after the commit")


async def test_a_failed_run_whose_record_committed_before_the_connection_dropped_counts_once() -> None:
    store = _CommitsThenDrops()
    runtime = Runtime(store=store, agents=[Agent(name="deploy_bot", model=ScriptedModel([]))])
    thread_id = await runtime.launch("deploy_bot", Event("user_input", {"text": "go"}))
    await runtime.run_until_idle()
    events = (await runtime.get(thread_id)).events
    records = [e.data for e in events if e.type == "run_error"]
    assert len(records) == 1 and isinstance(records[0], dict) and records[0]["attempt"] == 1


async def test_unknown_agents_are_clear(store: ThreadStore) -> None:
    runtime = Runtime(store=store, agents=[deploy_bot()])
    with pytest.raises(UserError, match="no agent named 'nope' in this runtime \\(it has: deploy_bot\\)"):
        await runtime.launch("nope", Event("user_input", "x"))
    with pytest.raises(UserError, match="two agents are named"):
        Runtime(store=store, agents=[deploy_bot(), deploy_bot()])


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_sync_wrappers(tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    # PostgreSQL too: its pool belongs to one event loop, which every *_sync call must reuse.
    url = f"sqlite:///{tmp_path}/t.db" if kind == "sqlite" else request.getfixturevalue("postgres_url")
    asks = '{"intent": "request_human_input", "question": "Which tag?"}'
    with Runtime(store=url, agents=[deploy_bot(DEPLOY, asks, DONE)]) as runtime:
        thread_id = runtime.launch_sync("deploy_bot", Event("slack_message", {"text": "deploy"}), idempotency_key="k")
        repeat = Event("slack_message", {"text": "deploy"})
        assert runtime.launch_sync("deploy_bot", repeat, idempotency_key="k") == thread_id
        with pytest.raises(IdempotencyKeyReused):  # the same key for another launch
            runtime.launch_sync("deploy_bot", Event("slack_message", {}), idempotency_key="k")
        runtime.run_until_idle_sync()
        thread = runtime.get_sync(thread_id)
        assert thread.pending is not None
        [summary] = runtime.list_sync(status="waiting_approval")
        assert summary.thread_id == thread_id
        runtime.approve_sync(thread_id, thread.pending.id, idempotency_key="click")
        runtime.approve_sync(thread_id, thread.pending.id, idempotency_key="click")  # a double click
        runtime.run_until_idle_sync()
        thread = runtime.get_sync(thread_id)
        assert thread.status == "waiting_human" and thread.pending is not None and effects == ["v1.2.3@production"]
        runtime.respond_sync(thread_id, thread.pending.id, "that one", idempotency_key="answer")
        runtime.send_event_sync(thread_id, Event("slack_message", {"text": "thanks"}), idempotency_key="m")
        runtime.send_event_sync(thread_id, Event("slack_message", {"text": "thanks"}), idempotency_key="m")
        runtime.run_until_idle_sync()
        thread = runtime.get_sync(thread_id)
        assert thread.status == "done"
        fork_id = runtime.fork_sync(thread_id, at=thread.events[0].id)
        assert runtime.cancel_sync(fork_id, "not needed", idempotency_key="c").status == "failed"
        assert runtime.cancel_sync(fork_id, "not needed", idempotency_key="c").status == "failed"
    types = [e.type for e in thread.events]
    assert (types.count("approval"), types.count("human_response"), types.count("slack_message")) == (1, 1, 2)


def test_every_sync_twin_takes_its_async_methods_parameters() -> None:
    twins = [n for n in dir(Runtime) if n.endswith("_sync") and not n.startswith("_") and n != "run_until_idle_sync"]
    assert len(twins) == 9
    for twin in twins:
        method = getattr(Runtime, twin.removesuffix("_sync"))
        assert inspect.signature(getattr(Runtime, twin)).parameters == inspect.signature(method).parameters
        assert getattr(Runtime, twin).__name__ == twin


async def test_sync_wrappers_refuse_a_running_loop() -> None:
    runtime = Runtime(store="memory://")
    with pytest.raises(UserError, match="cannot run inside an event loop"):
        runtime.get_sync("th_x")


async def test_a_runtime_without_agents_launches_by_name_for_the_workers(store: ThreadStore) -> None:
    web = Runtime(store=store)  # a web handler: no model clients in this process
    thread_id = await web.launch("deploy_bot", Event("slack_message", {"text": "deploy"}), idempotency_key="Ev1")
    assert (
        await web.launch("deploy_bot", Event("slack_message", {"text": "deploy"}), idempotency_key="Ev1") == thread_id
    )
    worker = Runtime(store=store, agents=[deploy_bot()])
    await worker.run_until_idle()
    assert (await worker.get(thread_id)).status == "waiting_approval"


async def test_a_run_under_a_lost_lease_takes_no_step(store: ThreadStore) -> None:
    runtime = Runtime(store=store, agents=[deploy_bot()])
    thread_id = await runtime.launch("deploy_bot", Event("slack_message", {"text": "deploy"}))
    await runtime.run_until_idle()
    pending = (await runtime.get(thread_id)).pending
    assert pending is not None
    approved = await runtime.approve(thread_id, pending.id)
    # A worker claims the thread, then stalls past its lease; another worker claims it meanwhile.
    assert await store.claim("stalled", lease_seconds=0.05, limit=1) == [thread_id]
    for _ in range(1000):
        if await store.claim("other", lease_seconds=30, limit=1) == [thread_id]:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(LeaseLost):
        await runtime.run_thread(thread_id, owner="stalled")  # it wakes up and tries to run the deploy
    assert effects == [] and await runtime.get(thread_id) == approved
    assert (await runtime.run_thread(thread_id, owner="other")).status == "done"
    assert effects == ["v1.2.3@production"]


async def test_a_thread_cancelled_while_its_tool_runs_keeps_the_tool_s_result(store: ThreadStore) -> None:
    started, cancelled, charged = asyncio.Event(), asyncio.Event(), list[int]()

    @tool
    async def charge(amount: int) -> str:
        """Charge a card."""
        started.set()
        await cancelled.wait()
        charged.append(amount)
        return "charged"

    agent = Agent(name="biller", model=ScriptedModel(['{"intent": "charge", "amount": 5}', DONE]), tools=[charge])
    runtime = Runtime(store=store, agents=[agent])
    thread_id = await runtime.launch("biller", Event("user_input", {"text": "charge 5"}))
    run = asyncio.create_task(runtime.run_thread(thread_id))
    await started.wait()
    await runtime.cancel(thread_id, "a duplicate")
    cancelled.set()
    await run
    thread = await runtime.get(thread_id)
    assert charged == [5] and thread.status == "failed"
    # The log says the charge ran: its result follows `failed`, which it does not undo.
    assert [e.type for e in thread.events][-3:] == ["tool_started", "failed", "tool_response"]


async def test_a_thread_cancelled_while_its_tool_is_about_to_start_runs_nothing(store: ThreadStore) -> None:
    runtime = Runtime(store=store)

    async def cancel_at_start(thread: Thread, event: Event) -> None:
        if event.type == "tool_started":  # recorded here, not yet saved: someone cancels meanwhile
            await runtime.cancel(thread.id, "the customer called it off")

    @tool
    def send_invoice(amount: int) -> str:
        """Send an invoice."""
        effects.append(f"invoice {amount}")
        return "sent"

    model = ScriptedModel(['{"intent": "send_invoice", "amount": 100}', DONE])
    agent = Agent(name="billing", model=model, tools=[send_invoice], after_step=cancel_at_start)
    runtime.agents["billing"] = agent
    thread_id = await runtime.launch("billing", Event("user_input", {"text": "bill them"}))
    await runtime.run_until_idle()
    thread = await runtime.get(thread_id)
    assert thread.status == "failed" and effects == []
    # The call is written with its start, in one append: the cancel came first, so neither is stored.
    assert [e.type for e in thread.events] == ["user_input", "failed"]


class _Batches(MemoryStore):
    """A memory store that notes the event types of each append."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.syncs: list[bool] = []  # whether each append waited for the disk

    async def append(
        self,
        thread: Thread,
        *,
        after: int,
        idempotency_key: str | None = None,
        request: str | None = None,
        owner: str | None = None,
        sync: bool = True,
    ) -> None:
        await super().append(
            thread, after=after, idempotency_key=idempotency_key, request=request, owner=owner, sync=sync
        )
        self.batches.append([e.type for e in thread.events[after:]])
        self.syncs.append(sync)


@tool
def list_git_tags() -> list[str]:
    """The repository's tags."""
    effects.append("listed")
    return ["v1.2.3"]


async def _batches(agent: Agent) -> tuple[Thread, list[list[str]]]:
    store = _Batches()
    runtime = Runtime(store=store, agents=[agent])
    thread_id = await runtime.launch(agent.name, Event("user_input", {"text": "go"}))
    await runtime.run_thread(thread_id)
    return await runtime.get(thread_id), store.batches[1:]


async def test_a_call_that_runs_at_once_is_written_with_its_start_and_the_result_alone() -> None:
    model = ScriptedModel(['{"intent": "list_git_tags"}', DONE])
    thread, batches = await _batches(Agent(name="a", model=model, tools=[list_git_tags]))
    assert batches == [["tool_call", "tool_started"], ["tool_response"], ["done_for_now"]]
    assert thread.status == "done" and effects == ["listed"]


async def test_a_call_waiting_for_approval_is_written_alone() -> None:
    thread, batches = await _batches(deploy_bot())
    assert batches == [["tool_call"]] and thread.status == "waiting_approval"


async def test_a_hook_that_stops_the_call_leaves_it_written_and_not_started() -> None:
    def ask_first(thread: Thread, event: Event) -> list[Event]:
        if event.type != "tool_call":
            return []
        return [Event("request_human_input", {"question": "sure?", "context": "", "format": "free_text"})]

    model = ScriptedModel(['{"intent": "list_git_tags"}'])
    agent = Agent(name="a", model=model, tools=[list_git_tags], after_step=ask_first)
    thread, batches = await _batches(agent)
    assert batches == [["tool_call", "request_human_input"]]
    assert thread.status == "waiting_human" and effects == []


async def test_a_hooks_events_are_written_with_the_call_and_its_start() -> None:
    def note(thread: Thread, event: Event) -> list[Event]:
        return [Event("note", {"after": event.type})] if event.type in ("tool_call", "tool_started") else []

    model = ScriptedModel(['{"intent": "list_git_tags"}', DONE])
    thread, batches = await _batches(Agent(name="a", model=model, tools=[list_git_tags], after_step=note))
    assert batches[0] == ["tool_call", "note", "tool_started", "note"]
    assert batches[1:] == [["tool_response"], ["done_for_now"]] and thread.status == "done"


async def test_a_prefetch_call_is_written_with_its_start() -> None:
    model = ScriptedModel([DONE])
    thread, batches = await _batches(Agent(name="a", model=model, tools=[], prefetch=[list_git_tags]))
    assert batches == [["tool_call", "tool_started"], ["tool_response"], ["done_for_now"]]
    assert thread.status == "done" and effects == ["listed"]


async def test_stopping_during_a_model_step_still_runs_and_saves_the_started_call() -> None:
    stop = asyncio.Event()

    def decide(messages: object) -> str:
        stop.set()  # the worker is told to stop while the model decides
        return '{"intent": "list_git_tags"}'

    store = _Batches()
    runtime = Runtime(store=store, agents=[Agent(name="a", model=ScriptedModel([decide, DONE]), tools=[list_git_tags])])
    thread_id = await runtime.launch("a", Event("user_input", {"text": "go"}))
    thread = await runtime.run_thread(thread_id, stop=stop)
    assert store.batches[1:] == [["tool_call", "tool_started"], ["tool_response"]]
    assert store.syncs[1:] == [True, True]  # the result ends the run: it waits for the disk
    assert thread.status == "ready" and effects == ["listed"] and thread.state.runnable is None


async def test_a_hook_that_stops_a_prefetch_call_stops_the_prefetching() -> None:
    @tool
    def list_regions() -> list[str]:
        """The regions."""
        effects.append("regions")
        return ["eu"]

    def ask_first(thread: Thread, event: Event) -> list[Event]:
        if event.type != "tool_call":
            return []
        return [Event("request_human_input", {"question": "sure?", "context": "", "format": "free_text"})]

    agent = Agent(
        name="a", model=ScriptedModel([]), tools=[], prefetch=[list_git_tags, list_regions], after_step=ask_first
    )
    thread, batches = await _batches(agent)
    assert batches == [["tool_call", "request_human_input"]]
    assert thread.status == "waiting_human" and effects == []


# -- which saves wait for the disk (`sync`) ------------------------------------------------------------


async def _syncs(agent: Agent) -> tuple[Thread, list[tuple[list[str], bool]]]:
    store = _Batches()
    runtime = Runtime(store=store, agents=[agent])
    thread_id = await runtime.launch(agent.name, Event("user_input", {"text": "go"}))
    await runtime.run_thread(thread_id)
    return await runtime.get(thread_id), list(zip(store.batches, store.syncs, strict=True))[1:]


async def test_only_a_result_the_run_goes_on_from_skips_the_disk_sync() -> None:
    @tool
    def fail() -> str:
        """Fails."""
        raise RuntimeError("no")

    model = ScriptedModel(['{"intent": "list_git_tags"}', '{"intent": "fail"}', DONE])
    thread, saves = await _syncs(Agent(name="a", model=model, tools=[list_git_tags, fail]))
    assert saves == [
        (["tool_call", "tool_started"], True),  # before the tool runs
        (["tool_response"], False),  # the run goes on: the next synced save carries it to the disk
        (["tool_call", "tool_started"], True),
        (["error"], False),  # a tool's error is its result too
        (["done_for_now"], True),  # the end of the run
    ]
    assert thread.status == "done"


async def test_a_result_the_run_ends_with_waits_for_the_disk() -> None:
    def ask(thread: Thread, event: Event) -> list[Event]:
        if event.type != "tool_response":
            return []
        return [Event("request_human_input", {"question": "ok?", "context": "", "format": "free_text"})]

    model = ScriptedModel(['{"intent": "list_git_tags"}'])
    thread, saves = await _syncs(Agent(name="a", model=model, tools=[list_git_tags], after_step=ask))
    assert saves == [(["tool_call", "tool_started"], True), (["tool_response", "request_human_input"], True)]
    assert thread.status == "waiting_human"


async def test_a_run_that_ends_after_a_result_ends_on_a_synced_save() -> None:
    # The model cannot be asked after the result (the script is spent): its error, which ends the
    # run with the thread still `ready`, is synced, and with it the result before.
    model = ScriptedModel(['{"intent": "list_git_tags"}'])
    thread, saves = await _syncs(Agent(name="a", model=model, tools=[list_git_tags]))
    assert saves == [(["tool_call", "tool_started"], True), (["tool_response"], False), (["error"], True)]
    assert thread.status == "ready"


_INTERRUPTED_SCRIPT = """
import sys, time
from pathlib import Path
from threadloom import Agent, Event, Runtime, tool
from threadloom.models import ScriptedModel

started = Path(sys.argv[2])

@tool
def slow_report() -> str:
    '''A tool that takes a while.'''
    started.write_text("started")
    time.sleep(1.5)
    return "the report"

call = '{"intent": "slow_report"}'
done = '{"intent": "done_for_now", "message": "ok"}'
agent = Agent(name="a", model=ScriptedModel([call, done]), tools=[slow_report])
with Runtime(store=sys.argv[1], agents=[agent]) as runtime:
    thread_id = runtime.launch_sync("a", Event("user_input", "go"))
    print(thread_id, flush=True)
    try:
        runtime.run_until_idle_sync()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


def test_ctrl_c_on_run_until_idle_sync_keeps_the_finished_tools_result(tmp_path: Path) -> None:
    # Before: the tool's run was cancelled with the task, its result lost: "outcome unknown".
    import signal
    import subprocess
    import sys
    import time

    url, started = f"sqlite:///{tmp_path}/t.db", tmp_path / "started"
    script = tmp_path / "script.py"
    script.write_text(_INTERRUPTED_SCRIPT)
    child = subprocess.Popen([sys.executable, str(script), url, str(started)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    thread_id = child.stdout.readline().strip()
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    assert "interrupted" in out
    with Runtime(store=url) as runtime:
        thread = runtime.get_sync(thread_id)
    types = [e.type for e in thread.events]
    assert types[-1] == "tool_response" and thread.status == "ready"  # saved; the model call waits


async def test_respond_takes_a_choice_as_thread_respond_reads_it(store: ThreadStore) -> None:
    runtime = Runtime(store=store)
    question: dict[str, JsonValue] = {
        "question": "which?",
        "format": "multiple_choice",
        "choices": ["retry", "mark_done"],
    }
    thread_id = await runtime.launch("a", Event("user_input", "x"))
    thread = await runtime.send_event(thread_id, Event("request_human_input", question))
    assert thread.pending is not None
    with pytest.raises(UserError, match="choose one of 'retry', 'mark_done'"):  # the one check, Thread.respond's
        await runtime.respond(thread_id, thread.pending.id, "maybe")
    assert (await runtime.respond(thread_id, thread.pending.id, " Mark done")).status == "ready"


async def test_list_refuses_what_stores_would_read_differently(store: ThreadStore) -> None:
    from datetime import datetime

    runtime = Runtime(store=store)
    await runtime.launch("a", Event("user_input", "x"))
    with pytest.raises(UserError, match="limit must be 0 or more"):
        await runtime.list(limit=-1)
    with pytest.raises(UserError, match="updated_after must have a timezone"):
        await runtime.list(updated_after=datetime(2026, 1, 1))  # noqa: DTZ001 - the mistake under test
    with pytest.raises(UserError, match="before must have a timezone"):
        await runtime.list(before=(datetime(2026, 1, 1), "th_x"))  # noqa: DTZ001
    assert await runtime.list(limit=0) == [] and len(await runtime.list()) == 1
