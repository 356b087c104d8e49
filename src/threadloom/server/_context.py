"""`GET /v1/threads/{thread_id}/context`: the exact messages the model got at each step, with token counts."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from ._auth import Caller, config_of, require
from ._bodies import ContextOut, MessageOut, StepOut, ToolCallOut, error_responses
from ._errors import ApiError
from ._params import ThreadId
from ._steps import model_steps

__all__ = ["router"]

router = APIRouter(tags=["threads"])


@router.get(
    "/{thread_id}/context",
    operation_id="get_context",
    summary="The messages the model got at each step, with their tokens",
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def context(thread_id: ThreadId, request: Request, _: Annotated[Caller, Depends(require("read"))]) -> ContextOut:
    """Each model step's messages, rendered again from the thread before it by the agent's own code.

    A 409 when this server does not run the thread's agent (it cannot render for it).
    """
    runtime = config_of(request).runtime
    thread = await runtime.get(thread_id)
    name = thread.metadata.get("agent")
    agent = runtime.agents.get(name) if isinstance(name, str) else None
    if agent is None:
        raise ApiError(409, "agent_not_served", f"this server does not run the agent {name!r} of this thread")
    steps = [
        StepOut(
            event_id=step.event.id,
            type=step.event.type,
            at=step.event.at,
            model=step.model,
            messages=[
                MessageOut(
                    role=message.role,
                    content=message.content,
                    tool_calls=[ToolCallOut(id=c.id, name=c.name, arguments=c.arguments) for c in message.tool_calls],
                    tool_call_id=message.tool_call_id,
                    tokens=tokens,
                )
                for message, tokens in zip(step.messages, step.tokens, strict=True)
            ],
            tokens=sum(step.tokens),
            counter=step.counter.name,
            exact=step.counter.exact,
            reported_input_tokens=step.reported.input_tokens,
            hooked=step.hooked,
            error=step.error,
        )
        for step in await asyncio.to_thread(model_steps, agent, thread)  # rendering is CPU work: off the loop
    ]
    return ContextOut(thread_id=thread.id, agent=agent.name, steps=steps)
