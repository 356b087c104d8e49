"""Replay a stored thread's model steps against another model, and see where the decisions differ."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from threadloom import Agent, Event, ParseError, Thread, parse
from threadloom.models import Model

__all__ = ["StepComparison", "compare_decisions"]


@dataclass(frozen=True, slots=True)
class StepComparison:
    """One model step of a thread: what was decided then, and what the other model decides now."""

    step: int
    """The step's number, from 1."""
    event_id: str
    """The id of the event that recorded the original decision."""
    recorded: str
    """The original decision, as `{"intent": ..., **fields}` JSON (or the error it was)."""
    replayed: str
    """The other model's decision on the same context."""

    @property
    def same(self) -> bool:
        """Whether both decisions are the same intent with the same fields."""
        return self.recorded == self.replayed


async def compare_decisions(agent: Agent, thread: Thread, model: Model) -> list[StepComparison]:
    """Ask `model` at every point of `thread` where the agent's model decided, with the same context.

    Each model step is re-asked with the thread as it was just before it (`agent.request`, so the
    agent's prompt, tools and context settings are used; the prompt's strategy stays the agent's).

    Example:
        ```python
        import asyncio

        from threadloom import Agent, Thread
        from threadloom.evals import compare_decisions
        from threadloom.models import ScriptedModel

        done = '{"intent": "done_for_now", "message": "hi"}'
        thread = Agent(name="a", model=ScriptedModel([done])).run_sync(Thread.start("user_input", {"text": "hi"}))
        other = ScriptedModel(['{"intent": "done_for_now", "message": "hello"}'])
        [step] = asyncio.run(compare_decisions(Agent(name="a", model=other), thread, other))
        assert not step.same and "hello" in step.replayed
        ```
    """
    found: list[StepComparison] = []
    events = list(thread.events)
    for index, event in enumerate(events):
        if not _by_model(event) or index == 0:
            continue
        before = thread.fork(at=events[index - 1].id, thread_id=thread.id)
        completion = await model.complete(agent.request(before))
        try:
            if completion.error is not None:
                raise ParseError(completion.error, text=completion.text)
            replayed = _decision(agent.to_event(parse(completion.text, agent.intent_type)))
        except ParseError as exc:
            replayed = f"error: {str(exc).splitlines()[0]}"
        found.append(StepComparison(len(found) + 1, event.id, _decision(event), replayed))
    return found


def _data(event: Event) -> dict[str, Any]:
    return cast("dict[str, Any]", event.data) if isinstance(event.data, dict) else {}


def _by_model(event: Event) -> bool:
    data = _data(event)
    return "model" in data or (event.type == "error" and data.get("source") == "model")


def _decision(event: Event) -> str:
    data = {k: v for k, v in _data(event).items() if k != "model"}
    if event.type == "error":
        return f"error: {str(data.get('message', '')).splitlines()[0] if data.get('message') else ''}"
    if event.type == "tool_call":
        return json.dumps({"intent": data.get("intent"), **cast("dict[str, Any]", data.get("arguments") or {})})
    return json.dumps({"intent": event.type, **data})
