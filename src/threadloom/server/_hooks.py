"""Inbound webhooks: `POST /v1/hooks/{name}`, a Standard-Webhooks-signed payload that launches or resumes a thread.

The payload becomes the data of an `Event(hook.event_type, payload)`: with a string `thread_id` in
it, the event is sent to that thread; without, it launches a thread of the hook's agent. The
signature is the API key here: no `Authorization` is needed, and an unsigned, forged, changed or
older-than-5-minutes request is a 401 before anything is read into a thread. The `webhook-id` is
the idempotency key, so a sender's retry of one message launches or appends nothing new.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field, JsonValue

from ..events import Event
from ..exceptions import ThreadBusy, UserError
from ..state import Status
from ._auth import config_of
from ._bodies import ErrorBody, EventBody
from ._errors import TOO_LARGE_NUMBER, ApiError, too_large_number
from ._signing import BadSignature, verify
from ._threads import outside_event

__all__ = ["HookAccepted", "router"]

router = APIRouter(tags=["hooks"])


class HookAccepted(BaseModel):
    """What a hook did: the thread it launched or sent the event to, and that thread's status now."""

    thread_id: str = Field(description="The thread launched, or the one named by the payload's `thread_id`.")
    status: Status = Field(description="The thread's status after the event.")
    action: Literal["launched", "sent"] = Field(description="Whether a thread was launched or an event sent.")


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": meaning}
    for status, meaning in {
        401: "Unsigned, forged, changed, or signed more than 5 minutes from now: nothing was appended",
        404: "No hook of this name, or no thread with the payload's `thread_id`",
        409: "This `webhook-id` came before with another payload; nothing was appended",
        413: "The body is over the server's limit",
        422: "The body is not JSON, its `thread_id` is not a string, or it cannot be an event",
        503: "The store cannot be reached, or the thread's running tool kept the event waiting; send it again",
    }.items()
}


@router.post("/v1/hooks/{name}", status_code=202, responses=_ERRORS, summary="Launch or resume a thread from a webhook")
async def receive(
    request: Request,
    name: Annotated[str, Path(description="The hook's name, as configured (`[[hooks]]` in threadloom.toml).")],
) -> HookAccepted:
    """Take a signed webhook: launch a thread of the hook's agent, or send the event to the payload's `thread_id`.

    Signed the Standard Webhooks way with the hook's `whsec_` secret (`webhook-id`,
    `webhook-timestamp`, `webhook-signature` headers). A retry under the same `webhook-id` does
    nothing new and answers as the first did.
    """
    config = config_of(request)
    hook = config.hooks.get(name)
    if hook is None:
        raise ApiError(404, "hook_not_found", f"no hook is named {name!r}")
    content = await request.body()
    try:
        message_id = verify(hook.secret, request.headers, content)
    except BadSignature as exc:
        raise ApiError(401, "bad_signature", exc.reason) from None
    try:
        payload: JsonValue = json.loads(content)
    except (ValueError, RecursionError) as exc:
        message = TOO_LARGE_NUMBER if too_large_number(exc) else "the body is not JSON"
        raise ApiError(422, "invalid_request", message) from None
    event = _event(hook.event_type, payload)
    key = f"hook:{name}:{message_id}"  # scoped to the hook: two senders' ids never collide
    target = payload.get("thread_id") if isinstance(payload, dict) else None
    if target is None:
        thread_id = await config.runtime.launch(hook.agent, event, idempotency_key=key)
        return HookAccepted(thread_id=thread_id, status=(await config.runtime.get(thread_id)).status, action="launched")
    if not isinstance(target, str):
        raise ApiError(422, "invalid_request", "the payload's thread_id must be a string")
    try:
        thread = await config.runtime.send_event(target, event, idempotency_key=key)
    except ThreadBusy as exc:  # a sender's retry, under the same webhook-id, lands it once
        raise ApiError(503, "thread_busy", str(exc), headers={"Retry-After": "5"}) from None
    return HookAccepted(thread_id=thread.id, status=thread.status, action="sent")


def _event(event_type: str, payload: JsonValue) -> Event:
    try:
        # The API's rule for outside events: threadloom's own types (`approval`, ...) are refused, so
        # a hook configured with one cannot let a sender decide for a person. Built unvalidated:
        # the payload is JSON already, and the event checks its data itself.
        return outside_event(EventBody.model_construct(type=event_type, data=payload))
    except UserError as exc:  # too deep, not finite, a lone surrogate, ...: the event's own checks
        raise ApiError(422, "invalid_request", f"the payload cannot be an event: {exc}") from None
