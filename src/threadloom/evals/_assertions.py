"""`assert_next_intent`: the workshop's `@@assert(intent, ...)` as one line of a test."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from threadloom import Agent, Intent, ParseError, Thread

from ._checks import NextIntent, Sample

__all__ = ["assert_next_intent", "assert_next_intent_sync"]


async def assert_next_intent(agent: Agent, thread: Thread, intent: Any, **fields: Any) -> Intent:
    """Ask the agent for the next step and fail the test unless it is `intent` with these fields.

    Fields are exact values or matchers (`OneOf`, `Regex`, `Range`); fields not named are not looked at.

    Example:
        ```python
        import asyncio

        from threadloom import Agent, Thread
        from threadloom.evals import Regex, assert_next_intent
        from threadloom.models import ScriptedModel

        agent = Agent(name="greeter", model=ScriptedModel(['{"intent": "done_for_now", "message": "hello!"}']))
        thread = Thread.start("user_input", {"text": "hi"})
        asyncio.run(assert_next_intent(agent, thread, "done_for_now", message=Regex("^hello")))
        ```

    Returns:
        The intent the model chose.

    Raises:
        AssertionError: Another intent, a field that does not match, or an answer that is no intent;
            the message shows the answer and the end of the rendered context.
    """
    try:
        chosen = await agent.next_step(thread)
    except ParseError as exc:
        raise AssertionError(f"the model's answer is not a valid intent: {exc}\n{_context(agent, thread)}") from exc
    name = str(getattr(chosen, "intent", type(chosen).__name__))
    values = chosen.model_dump(mode="json", exclude={"intent"})
    answer = json.dumps({"intent": name, **values}, ensure_ascii=False)
    expected = NextIntent(intent, **fields)
    result = await expected.check(Sample(thread, (), name, values, answer))
    if not result.passed:
        raise AssertionError(f"expected {expected}, got {answer}: {result.detail}\n{_context(agent, thread)}")
    return chosen


def assert_next_intent_sync(agent: Agent, thread: Thread, intent: Any, **fields: Any) -> Intent:
    """`assert_next_intent` for tests without an event loop."""
    return asyncio.run(assert_next_intent(agent, thread, intent, **fields))


def _context(agent: Agent, thread: Thread) -> str:
    last = agent.render(thread)[-1]
    text = last.content if len(last.content) < 1500 else "..." + last.content[-1500:]
    return f"the model saw (last message, {last.role}):\n{text}"
