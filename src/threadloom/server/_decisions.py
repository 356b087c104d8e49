"""A person's decisions over the API: approve or reject the call waiting for approval, answer a human request.

Both need the `approve` scope and record who decided (`key:NAME`). A decision on something the
thread does not wait for is a 409 that says what it does wait for: its status and pending id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import JsonValue

from ..events import TOOL_CALL
from ..exceptions import InvalidTransition
from ..runtime import Runtime
from ..state import call_arguments
from ..thread import Thread
from ._answering import ChoiceError, check_choice, choices_of
from ._auth import Caller, config_of, require
from ._bodies import AnswerBody, DecisionBody, ThreadStatus, error_responses
from ._errors import ApiError
from ._params import IdempotencyKey, ThreadId
from ._redaction import Redaction

__all__ = ["not_waiting", "router"]

router = APIRouter(tags=["decisions"])

EventId = Annotated[str, Path(max_length=200)]


async def not_waiting(runtime: Runtime, thread_id: str, exc: InvalidTransition) -> ApiError:
    """The 409 of a decision the thread does not wait for, saying what it waits for.

    Beside the message: `thread_status`, `pending_id` (or null) and `waiting_for` (one line, or null).
    """
    thread = await runtime.get(thread_id)
    pending = thread.pending
    return ApiError(
        409,
        "not_waiting",
        str(exc),
        thread_status=thread.status,
        pending_id=None if pending is None else pending.id,
        waiting_for=thread.waiting_reason,
    )


_DECISION_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 503)


@router.post(
    "/{thread_id}/approvals/{call_id}",
    operation_id="decide",
    summary="Approve or reject the call waiting for approval",
    responses=_DECISION_ERRORS,
)
async def decide(
    thread_id: ThreadId,
    call_id: EventId,
    body: DecisionBody,
    request: Request,
    caller: Annotated[Caller, Depends(require("approve"))],
    key: IdempotencyKey = None,
) -> ThreadStatus:
    """Approve (with `edits` to its arguments, if any) or reject (with `feedback` for the model) the pending call."""
    runtime = config_of(request).runtime
    try:
        if body.decision == "approve":
            edits = await _edits(runtime, thread_id, call_id, body.edits)
            thread = await runtime.approve(thread_id, call_id, edits, idempotency_key=key, by=caller.by)
        else:
            feedback = body.feedback or "rejected"
            thread = await runtime.reject(thread_id, call_id, feedback, idempotency_key=key, by=caller.by)
    except InvalidTransition as exc:
        raise await not_waiting(runtime, thread_id, exc) from None
    return ThreadStatus(thread_id=thread.id, status=thread.status)


async def _edits(
    runtime: Runtime, thread_id: str, call_id: str, edits: dict[str, JsonValue] | None
) -> dict[str, JsonValue] | None:
    """`edits`, less any that sends a secret argument back as a read shows it (`[REDACTED]`): it keeps its value.

    The call is looked up by id, pending or not, so a repeated delivery sends the runtime the same edits.
    """
    if not edits:
        return edits
    thread = await runtime.get(thread_id)
    call = thread.find(call_id)
    if call is None or call.type != TOOL_CALL:
        return edits  # the runtime answers that the thread does not wait for it
    return Redaction.of(runtime, thread).kept(call_arguments(call), edits)


@router.post(
    "/{thread_id}/responses/{request_id}",
    operation_id="respond",
    summary="Answer the human request",
    responses=_DECISION_ERRORS,
)
async def respond(
    thread_id: ThreadId,
    request_id: EventId,
    body: AnswerBody,
    request: Request,
    caller: Annotated[Caller, Depends(require("approve"))],
    key: IdempotencyKey = None,
) -> ThreadStatus:
    """Answer in words (`text`) or with one of the request's `choices` (`choice`)."""
    runtime = config_of(request).runtime
    text = body.text if body.choice is None else _choice(await runtime.get(thread_id), request_id, body.choice)
    assert text is not None  # AnswerBody holds one of the two
    try:
        thread = await runtime.respond(thread_id, request_id, text, idempotency_key=key, by=caller.by)
    except InvalidTransition as exc:
        raise await not_waiting(runtime, thread_id, exc) from None
    return ThreadStatus(thread_id=thread.id, status=thread.status)


def _choice(thread: Thread, request_id: str, choice: str) -> str:
    """`choice`, once it is checked to be exactly one of the pending request's choices (yes / no for `yes_no`).

    It is passed on as it came (never as the thread spells it), so that a repeated delivery is the
    same request: when the request is no longer the pending one, the runtime replays the delivery
    or answers 409.

    Raises:
        ApiError: 422: the request has no choices, or none is `choice`.
    """
    pending = thread.pending
    if pending is None or pending.id != request_id:
        return choice
    try:
        return check_choice(choices_of(pending), choice)
    except ChoiceError as exc:
        raise ApiError(422, exc.code, str(exc)) from None
