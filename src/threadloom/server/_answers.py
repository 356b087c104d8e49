"""`/v1/answers/{token}`: answer one approval or question from a link, with no API key (the token is the capability).

`GET` shows the request (a page, or JSON for `Accept: application/json`); `POST` answers it, from
the page's form (CSRF-checked: a hidden token bound to the link) or as JSON. Answering again with
the same answer changes nothing (200); a different one is 409 `already_answered`, with when and by
whom. A link that is not ours is 403 `invalid_link`, an expired one 410 `link_expired`; neither
appends anything. Decisions are recorded `by: "answer_link"`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, JsonValue

from ..exceptions import InvalidTransition, ThreadNotFound, UserError
from ..thread import Thread
from ._answering import Answer, Ask, Decision, ask_of, decision_of, give, read_form, read_json
from ._auth import config_of
from ._bodies import AnswerBody, DecisionBody, ErrorBody
from ._config import ServerConfig
from ._errors import TOO_LARGE_NUMBER, error_body, too_large_number
from ._fields import FormError
from ._links import AnswerToken, BadToken, read_token
from ._pages import page, timeline
from ._redaction import Redaction
from ._session import csrf_ok, csrf_token

__all__ = ["ANSWER_LINK", "router"]

ANSWER_LINK = "answer_link"
"""How a decision made through an answer link is recorded (`by`)."""
_RECENT = 8
"""The thread's newest events the page shows as context."""

router = APIRouter(tags=["answer links"])


class Answered(BaseModel):
    """A recorded answer."""

    at: datetime
    """When it was given."""
    by: str
    """Who gave it: `answer_link`, or `key:NAME` for the API and the inbox."""
    decision: Literal["approve", "reject", "respond"]
    """What kind of answer."""
    edits: dict[str, JsonValue] = {}
    """Arguments changed before approving."""
    feedback: str = ""
    """Why a call was rejected."""
    text: str = ""
    """The answer to a question."""


class LinkView(BaseModel):
    """What an answer link asks, and whether it is answered."""

    thread_id: str
    agent: str | None
    status: str
    """The thread's status now."""
    kind: Literal["approval", "question"]
    question: str
    context: str
    urgency: Literal["low", "medium", "high"]
    format: str
    """`approval`, `free_text`, `yes_no` or `multiple_choice`."""
    choices: list[str]
    intent: str | None
    """The tool an approval runs."""
    arguments: dict[str, JsonValue] | None
    """Its arguments as the model chose them (secret ones redacted)."""
    waiting: bool
    """The request still waits for an answer."""
    answered: Answered | None
    expires_at: datetime


_MEANINGS = {
    403: "Not an answer link of this server (`invalid_link`), or a form without its CSRF token (`csrf_failed`)",
    404: "The link's thread or request is gone",
    409: "Answered already with another answer (`already_answered`: `answered_at`, `by`), or no longer waiting",
    410: "The link has expired (`link_expired`)",
    413: "The body is over the server's limit",
    415: "Neither JSON nor the page's form",
    422: "The answer does not fit the request (`invalid_answer`), or a parameter is not valid",
}


def _refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The errors a link route answers: JSON for programs, a page for browsers (415 and 413 are JSON only)."""
    pages: dict[str, Any] = {"text/html": {}}
    return {
        s: {"model": ErrorBody, "description": _MEANINGS[s], "content": {} if s in (413, 415) else pages}
        for s in statuses
    }


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _refusal(request: Request, refused: _Refused, *, as_json: bool) -> Response:
    if as_json:
        return JSONResponse(error_body(refused.code, refused.message, **refused.details), status_code=refused.status)
    return page(
        request, "refused.html", status=refused.status, title="This link cannot be used", message=refused.message
    )


async def _open(config: ServerConfig, token: str) -> tuple[AnswerToken, Thread, Ask]:
    """The token's thread and request, or `_Refused` when the link is forged, expired or names nothing."""
    try:
        claim = read_token(config.secret, token)
    except BadToken as exc:
        if exc.expired:
            raise _Refused(410, "link_expired", f"{exc.reason}; ask for a new one") from None
        raise _Refused(403, "invalid_link", "this is not an answer link of this server") from None
    try:
        thread = await config.runtime.get(claim.thread_id)
    except ThreadNotFound:
        raise _Refused(404, "thread_not_found", "the thread this link answers is gone") from None
    event = thread.find(claim.event_id)
    if event is None:
        raise _Refused(404, "request_not_found", "the request this link answers is not in its thread")
    return claim, thread, ask_of(config.runtime, thread, event, redaction=Redaction.of(config.runtime, thread))


def _answered(decision: Decision | None, redaction: Redaction) -> Answered | None:
    if decision is None:
        return None
    answer = decision.answer
    # Edits are arguments too: a secret typed into one is hidden as the call's own arguments are.
    edits = redaction.apply(dict(answer.edits))
    return Answered(
        at=decision.event.at,
        by=decision.by,
        decision=answer.decision,
        edits=edits if isinstance(edits, dict) else {},
        feedback=answer.feedback,
        text=answer.text,
    )


def _view(config: ServerConfig, claim: AnswerToken, thread: Thread, ask: Ask) -> LinkView:
    redaction = Redaction.of(config.runtime, thread)
    arguments = redaction.apply(ask.arguments) if ask.kind == "approval" else None
    return LinkView(
        thread_id=thread.id,
        agent=str(thread.metadata["agent"]) if "agent" in thread.metadata else None,
        status=thread.status,
        kind=ask.kind,
        question=ask.question,
        context=ask.context,
        urgency=ask.urgency,
        format=ask.format,
        choices=list(ask.choices),
        intent=ask.intent or None,
        arguments=arguments if isinstance(arguments, dict) else None,
        waiting=thread.pending is not None and thread.pending.id == ask.event.id,
        answered=_answered(decision_of(thread, ask.event.id), redaction),
        expires_at=claim.expires,
    )


def _show(
    request: Request, claim: AnswerToken, thread: Thread, ask: Ask, token: str, *, status: int = 200, **extra: Any
) -> Response:
    config = config_of(request)
    return page(
        request,
        "answer.html",
        status=status,
        section="answer",
        title=ask.question,
        thread=thread,
        ask=ask,
        view=_view(config, claim, thread, ask),
        recent=timeline(thread, Redaction.of(config.runtime, thread), last=_RECENT),
        csrf=csrf_token(config.secret, f"answer:{token}"),
        action=f"/v1/answers/{token}",
        **{"error": None, "values": {}, "thanks": False, **extra},
    )


@router.get(
    "/v1/answers/{token}",
    operation_id="show_answer_link",
    summary="Show what an answer link asks",
    response_model=None,
    responses={
        200: {
            "model": LinkView,
            "description": "The request: a page, or JSON for `Accept: application/json`",
            "content": {"text/html": {}},
        },
        **_refusals(403, 404, 410, 422),
    },
)
async def show(request: Request, token: str, answered: bool = False) -> Response:
    """The question, its context, the call's arguments (editable) and the choices; no API key needed."""
    config = config_of(request)
    as_json = _wants_json(request)
    try:
        claim, thread, ask = await _open(config, token)
    except _Refused as refused:
        return _refusal(request, refused, as_json=as_json)
    if as_json:
        return JSONResponse(_view(config, claim, thread, ask).model_dump(mode="json"))
    return _show(request, claim, thread, ask, token, thanks=answered)


_BODY = {
    "required": True,
    "content": {
        # The API's own bodies (a decision for an approval, an answer for a question), documented by its routes.
        "application/json": {
            "schema": {"oneOf": [{"$ref": f"#/components/schemas/{m.__name__}"} for m in (DecisionBody, AnswerBody)]}
        },
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {"csrf": {"type": "string"}, "action": {"type": "string"}}}
        },
    },
}


@router.post(
    "/v1/answers/{token}",
    operation_id="answer_link",
    summary="Answer through an answer link",
    response_model=None,
    openapi_extra={"requestBody": _BODY},
    responses={
        200: {"model": LinkView, "description": "Answered (or answered before with the same answer: nothing changed)"},
        303: {"description": "A form post: back to the page, which shows the answer"},
        **_refusals(403, 404, 409, 410, 413, 415, 422),
    },
)
async def answer(request: Request, token: str) -> Response:
    """Approve (with edits), reject with feedback, or answer; a repeat of the same answer is a no-op."""
    config = config_of(request)
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    is_form = kind in ("application/x-www-form-urlencoded", "multipart/form-data")
    try:
        claim, thread, ask = await _open(config, token)
    except _Refused as refused:
        return _refusal(request, refused, as_json=not is_form)
    if not is_form and kind != "application/json":
        return JSONResponse(
            error_body("unsupported_media_type", "send JSON (`Content-Type: application/json`) or the page's form"),
            status_code=415,
        )
    form: dict[str, str] | None = None
    if is_form:
        form = {name: value for name, value in (await request.form()).items() if isinstance(value, str)}
        if not csrf_ok(config.secret, f"answer:{token}", form.get("csrf")):
            refused = _Refused(
                403, "csrf_failed", "this form is out of date or came from another site: open the link again"
            )
            return _refusal(request, refused, as_json=False)
    try:
        if form is not None:
            given = read_form(ask, form)
        else:
            given = read_json(ask, _parsed(await request.body()), Redaction.of(config.runtime, thread))
        thread = await _settle(config, thread, ask, given)
    except (FormError, UserError) as exc:
        if form is not None:
            return _show(request, claim, thread, ask, token, status=422, error=f"Not sent: {exc}.", values=form)
        return JSONResponse(error_body("invalid_answer", str(exc)), status_code=422)
    except _Refused as refused:
        if form is not None:
            said = "it was answered already (below)" if refused.code == "already_answered" else refused.message
            return _show(request, claim, thread, ask, token, status=refused.status, error=f"Not sent: {said}.")
        return _refusal(request, refused, as_json=True)
    if form is not None:
        return RedirectResponse(f"/v1/answers/{token}?answered=true", status_code=303)
    return JSONResponse(_view(config, claim, thread, ask).model_dump(mode="json"))


def _parsed(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError as exc:  # not JSON, not UTF-8, or a number of too many digits
        raise FormError(TOO_LARGE_NUMBER if too_large_number(exc) else "the body is not JSON") from None
    except RecursionError:  # nested deeper than the parser goes: no answer is
        raise FormError("the body is nested too deep") from None


async def _settle(config: ServerConfig, thread: Thread, ask: Ask, given: Answer) -> Thread:
    """Record `given` unless the request is answered already: the same answer again is a no-op, another is refused."""
    decision = decision_of(thread, ask.event.id)
    if decision is None:
        try:
            return await give(config.runtime, thread.id, ask, given, by=ANSWER_LINK)
        except InvalidTransition:  # answered (or moved on) since the thread was read
            thread = await config.runtime.get(thread.id)
            decision = decision_of(thread, ask.event.id)
            if decision is None:
                raise _Refused(
                    409, "not_waiting", f"this request no longer waits for an answer: the thread is {thread.status}"
                ) from None
    if decision.same_as(ask, given):
        return thread
    at = decision.event.at.isoformat().replace("+00:00", "Z")  # as every time in a JSON body is written
    raise _Refused(
        409,
        "already_answered",
        f"this request was answered already, at {at} by {decision.by}",
        answered_at=at,
        by=decision.by,
    )
