"""The exact messages the model got at each model step of a thread, with their token counts.

A step's messages are not stored: they are rendered again, from the thread as it was before the
step's event, by the agent's own `request` (its context, prompt and per-step offer), the same code
its loop called. So they are what the model got, as long as the agent's code is the same, with two
exceptions a `Step` says: an agent with `before_model` may have shown the model another thread (the
hook is not called again here: it may call a model itself), and an outside event that arrived while
the model was thinking is in the prefix though the model did not see it (the run saves its step
after that event).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..agent import Agent
from ..events import Event
from ..exceptions import ThreadloomError
from ..messages import Message
from ..state import Usage, model_record, record_usage
from ..thread import Thread
from ..tokens import TokenCounter, count_messages, counter_for_model

__all__ = ["Step", "model_steps"]


@dataclass(frozen=True, slots=True)
class Step:
    """One model call of a thread: the event that records its answer and what it was asked."""

    event: Event
    """The event the model's answer became (a `tool_call`, `done_for_now`, a model `error`, ...)."""
    model: str
    """The model's name, as the call recorded it."""
    messages: tuple[Message, ...]
    """The messages it got, rendered again from the thread before `event`; empty if that failed."""
    tokens: tuple[int, ...]
    """Each message's tokens (content, tool calls and the per-message overhead), by `counter`."""
    counter: TokenCounter
    """What counted: the model's own tokenizer where threadloom has it (`counter.exact`), else an estimate."""
    reported: Usage
    """The tokens the model's provider reported for the call."""
    hooked: bool
    """The agent has `before_model`: the model may have got a changed thread, not the one rendered here."""
    error: str | None = None
    """Why the messages could not be rendered again (the agent's code changed since, say)."""


def model_steps(agent: Agent, thread: Thread) -> list[Step]:
    """Every model step of `thread`, oldest first, with the messages `agent` rendered for it."""
    steps: list[Step] = []
    before = Thread(thread_id=thread.id, metadata=thread.metadata)
    for event in thread.events:
        record = model_record(event)
        if record is not None:
            steps.append(_step(agent, before, event, str(record["name"]), record_usage(record)))
        before = before.append(event)
    return steps


def _step(agent: Agent, before: Thread, event: Event, model: str, reported: Usage) -> Step:
    counter = counter_for_model(model)
    hooked = agent.before_model is not None
    try:
        messages = agent.request(before).messages
    except ThreadloomError as exc:  # over the token budget, an offer naming a tool the agent lost, ...
        return Step(event, model, (), (), counter, reported, hooked, error=str(exc))
    tokens = tuple(count_messages([message], counter) for message in messages)
    return Step(event, model, messages, tokens, counter, reported, hooked)
