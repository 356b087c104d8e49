"""A run that stopped between `tool_started` and the result: no effect is silently repeated."""

import pytest

from threadloom import Agent, Event, Thread, tool
from threadloom.intents import idempotency_key
from threadloom.models import ScriptedModel

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
