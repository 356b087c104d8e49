"""A run that stopped between `tool_started` and the result: no effect is silently repeated."""

from collections.abc import Sequence
from typing import cast

import pytest

from threadloom import Agent, Event, Runtime, Thread, tool
from threadloom.context import Message
from threadloom.intents import idempotency_key
from threadloom.models import ScriptedModel
from threadloom.store import MemoryStore, ThreadStore

DONE = '{"intent": "done_for_now", "message": "done"}'
charges: list[str | None] = []
refunds: list[str | None] = []


@tool
def charge_card(amount: int) -> str:
    """Charge the customer's card (not safe to repeat)."""
    charges.append(idempotency_key())
    return f"charged {amount}"


@tool(idempotent=True)
def issue_refund(amount: int) -> str:
    """Refund through an API that honours idempotency keys."""
    refunds.append(idempotency_key())
    return f"refunded {amount}"


@pytest.fixture(autouse=True)
def _clear() -> None:
    charges.clear()
    refunds.clear()


def crashed_after_start(intent: str) -> Thread:
    """The log a process leaves when it dies after `tool_started`, before the result."""
    thread = Thread.start("user_input", {"text": "go"}, agent="billing")
    call = Event("tool_call", {"intent": intent, "arguments": {"amount": 5}, "policy": "auto"})
    started = Event("tool_started", {"call_id": call.id, "intent": intent, "idempotency_key": call.id})
    return thread.extend([call, started])


def agent(*outputs: str) -> Agent:
    return Agent(name="billing", model=ScriptedModel(outputs), tools=[charge_card, issue_refund])


def test_the_state_knows_a_call_is_in_flight() -> None:
    thread = crashed_after_start("charge_card")
    assert thread.state.runnable is not None and thread.state.runnable.started is thread.events[-1]


async def test_a_non_idempotent_tool_is_not_run_again_a_person_decides() -> None:
    thread = await agent().run(crashed_after_start("charge_card"))
    assert charges == [] and thread.status == "waiting_human"
    assert thread.pending is not None and thread.pending.data == {
        "question": "`charge_card` was started but its outcome is unknown: the process running it stopped. "
        "Retry it, mark it as done, or abort the thread?",
        "context": f'call {thread.events[1].id}: charge_card({{"amount": 5}})',
        "urgency": "high",
        "format": "multiple_choice",
        "choices": ["retry", "mark_done", "abort"],
        "reason": "outcome_unknown",
        "call_id": thread.events[1].id,
    }
    assert thread.state.unresolved is not None


async def test_retry_runs_it_once_with_the_same_key() -> None:
    thread = await agent(DONE).run(crashed_after_start("charge_card"))
    assert thread.pending is not None
    thread = await agent(DONE).run(thread.respond(thread.pending.id, "Retry"))
    assert charges == [thread.events[1].id] and thread.status == "done"


async def test_mark_done_does_not_run_it_and_the_model_goes_on() -> None:
    thread = await agent().run(crashed_after_start("charge_card"))
    assert thread.pending is not None
    model = ScriptedModel([DONE])
    thread = await Agent(name="billing", model=model, tools=[charge_card]).run(
        thread.respond(thread.pending.id, "mark_done")
    )
    assert charges == [] and thread.status == "done"
    assert "mark_done" in model.requests[0].messages[-1].content


async def test_abort_ends_the_thread() -> None:
    thread = await agent().run(crashed_after_start("charge_card"))
    assert thread.pending is not None
    thread = await agent().run(thread.respond(thread.pending.id, "abort"))
    assert charges == [] and thread.status == "failed"


async def test_an_idempotent_tool_runs_again_with_the_same_key() -> None:
    thread = await agent(DONE).run(crashed_after_start("issue_refund"))
    assert refunds == [thread.events[1].id] and thread.status == "done"
    assert [e.type for e in thread.events].count("tool_started") == 1  # the first start still stands


async def test_every_run_hands_the_call_id_as_key() -> None:
    thread = await agent('{"intent": "charge_card", "amount": 3}', DONE).run(Thread.start("user_input", "go"))
    call = thread.events[1]
    assert charges == [call.id] and thread.events[2].data == {
        "call_id": call.id,
        "intent": "charge_card",
        "idempotency_key": call.id,
    }
    assert idempotency_key() is None  # only inside a tool call


# -- a process that dies at each point of a tool step, on every store --------------------------------


class _Died(BaseException):
    """The process ended here (a BaseException: nothing on the way out may swallow it)."""


class _Dying:
    """A store whose process dies at one append: before it is written, or after it committed."""

    def __init__(self, store: ThreadStore, holding: str, *, committed: bool) -> None:
        self.store, self.holding, self.committed = store, holding, committed

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
        dies = self.holding in {e.type for e in thread.events[after:]}
        if dies and not self.committed:
            raise _Died
        await self.store.append(
            thread, after=after, idempotency_key=idempotency_key, request=request, owner=owner, sync=sync
        )
        if dies:
            raise _Died

    async def load(self, thread_id: str) -> Thread:
        return await self.store.load(thread_id)


async def _die_then_resume(store: ThreadStore, tool: str, holding: str, *, committed: bool) -> Thread:
    """Launch a thread, run it in a process that dies at the append holding `holding`, resume elsewhere."""

    def decide(messages: Sequence[Message]) -> str:  # what any process's model would answer
        return DONE if f"<{tool}_result>" in messages[-1].content else f'{{"intent": "{tool}", "amount": 5}}'

    def billing() -> Agent:
        return Agent(name="billing", model=ScriptedModel([decide] * 3), tools=[charge_card, issue_refund])

    thread_id = await Runtime(store=store).launch("billing", Event("user_input", {"text": "go"}))
    dying = Runtime(store=cast(ThreadStore, _Dying(store, holding, committed=committed)), agents=[billing()])
    with pytest.raises(_Died):
        await dying.run_thread(thread_id)
    return await Runtime(store=store, agents=[billing()]).run_thread(thread_id)


async def test_dying_after_the_model_call_before_its_save_asks_the_model_again(store: ThreadStore) -> None:
    # The call and its start are one append: dying before (or during) it leaves neither.
    thread = await _die_then_resume(store, "charge_card", "tool_call", committed=False)
    assert thread.status == "done" and len(charges) == 1
    assert [e.type for e in thread.events] == [
        "user_input", "tool_call", "tool_started", "tool_response", "done_for_now"
    ]  # fmt: skip


async def test_dying_once_the_call_and_its_start_are_saved_runs_nothing_twice(store: ThreadStore) -> None:
    # Saved, and the process dies before the tool runs: the log cannot tell, so a person decides.
    thread = await _die_then_resume(store, "charge_card", "tool_started", committed=True)
    assert charges == [] and thread.status == "waiting_human"
    assert thread.pending is not None and isinstance(thread.pending.data, dict)
    assert thread.pending.data["reason"] == "outcome_unknown"


async def test_dying_between_tool_started_and_the_result_repeats_no_effect(store: ThreadStore) -> None:
    thread = await _die_then_resume(store, "charge_card", "tool_response", committed=False)
    assert len(charges) == 1 and thread.status == "waiting_human"  # it ran once; a person decides
    refunded = await _die_then_resume(store, "issue_refund", "tool_response", committed=False)
    assert refunded.status == "done" and len(refunds) == 2 and refunds[0] == refunds[1]  # same key, idempotent


async def test_dying_after_the_result_is_saved_goes_on_from_it(store: ThreadStore) -> None:
    thread = await _die_then_resume(store, "charge_card", "tool_response", committed=True)
    assert thread.status == "done" and len(charges) == 1


# -- a power cut: what a run did not sync is gone -----------------------------------------------------


class _PowerCut(MemoryStore):
    """A store whose machine loses power at its `cut`-th append (before it commits, or just after).

    What survives is what the last synced append left (a synced commit carries every earlier one to
    the disk, as SQLite's WAL does); appends with `sync=False` since then are lost.
    """

    def __init__(self, cut: int, *, committed: bool) -> None:
        super().__init__()
        self.cut, self.committed, self.appends = cut, committed, 0
        self.disk: dict[str, Thread] = {}

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
        self.appends += 1
        if self.appends == self.cut and not self.committed:
            raise _Died
        await super().append(
            thread, after=after, idempotency_key=idempotency_key, request=request, owner=owner, sync=sync
        )
        if sync:
            self.disk = {i: await self.load(i) for i in {*self.disk, thread.id}}
        if self.appends == self.cut:
            raise _Died

    async def rebooted(self) -> MemoryStore:
        """A store holding what was on disk."""
        store = MemoryStore()
        for thread in self.disk.values():
            await store.append(thread, after=0)
        return store


_TWO_CHARGES_APPENDS = 6  # launch; two of (call with its start, result); done


@pytest.mark.parametrize("committed", [False, True])
@pytest.mark.parametrize("cut", range(2, _TWO_CHARGES_APPENDS + 1))
async def test_a_power_cut_anywhere_loses_no_call_that_ran(cut: int, committed: bool) -> None:
    def decide(messages: Sequence[Message]) -> str:  # two charges, then done, whichever process asks
        done = messages[-1].content.count("<charge_card_result>")
        return DONE if done == 2 else f'{{"intent": "charge_card", "amount": {5 + done}}}'

    def billing() -> Agent:
        return Agent(name="billing", model=ScriptedModel([decide] * 3), tools=[charge_card])

    store = _PowerCut(cut, committed=committed)
    thread_id = await Runtime(store=store).launch("billing", Event("user_input", {"text": "go"}))
    with pytest.raises(_Died):
        await Runtime(store=store, agents=[billing()]).run_thread(thread_id)
    thread = await Runtime(store=await store.rebooted(), agents=[billing()]).run_thread(thread_id)

    calls = {e.id for e in thread.events if e.type == "tool_call"}
    answered = {str(e.data["call_id"]) for e in thread.events if e.type == "tool_response" and isinstance(e.data, dict)}
    assert len(charges) == len(set(charges)) <= 2  # no call ran twice, and no charge was made anew
    assert set(charges) <= calls  # every call that ran is still on record...
    if thread.status == "waiting_human":  # a call started and its result is not on record: a person decides
        assert thread.pending is not None and isinstance(thread.pending.data, dict)
        assert thread.pending.data["reason"] == "outcome_unknown"
        assert set(charges) - answered <= {str(thread.pending.data["call_id"])}  # lost results are put to a person
    else:
        assert thread.status == "done" and len(charges) == 2 and set(charges) == answered
