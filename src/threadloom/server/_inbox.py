"""The web inbox: sign in with an API key, see what waits for a person, decide, and watch a thread live.

Server-rendered (Jinja2) pages under `/inbox`, outside the OpenAPI document: they are for people,
not for clients. Reading needs a key with `read`, deciding one with `approve`; every form carries
a CSRF token bound to the session (`_session`). A thread's page follows its events over
server-sent events from `/inbox/threads/{id}/stream`, which the session cookie authorises.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from ..events import Event
from ..exceptions import InvalidTransition, ThreadDecodeError, ThreadNotFound, UserError
from ..runtime import Runtime
from ..state import Status, model_record
from ..thread import Thread
from ._answering import URGENCY_RANK, Ask, ask_of, decision_of, give, read_form
from ._auth import config_of
from ._bodies import EventOut
from ._errors import ApiError, error_body
from ._fields import FormError
from ._pages import STATIC, fragment, page, render, status_label, ticks, timeline, view
from ._params import ThreadId
from ._redaction import Redaction
from ._session import LOGIN_COOKIE, Viewer, csrf_ok, keep_login_nonce, login_token, sign_in, sign_out, viewer_of
from ._steps import model_steps
from ._stream import resume_at, stream_events

__all__ = ["router"]

log = logging.getLogger("threadloom.server")

router = APIRouter(include_in_schema=False)
# Thread ids come as `ThreadId`, as in the API: one with a NUL is a 422 before the store sees it
# (PostgreSQL cannot hold a NUL and would fail the query).

WAITING: tuple[Status, ...] = ("waiting_approval", "waiting_human")
_LISTED = 200
"""Threads of each waiting status the inbox lists at most."""
_SHOWN = 500
"""A thread page's timeline shows the newest this many events."""
_STATIC = {"inbox.css": "text/css", "inbox.js": "text/javascript", "favicon.svg": "image/svg+xml"}
_FLASHES = {
    "approved": "Approved: the call runs next.",
    "rejected": "Rejected: the agent reads your feedback.",
    "answered": "Answer sent: the agent continues.",
    "signed_out": "You are signed out.",
}


@router.get("/inbox/static/{name}")
async def static(name: str) -> Response:
    """The inbox's CSS and JavaScript (a fixed list: no path from the URL reaches the file system)."""
    if name not in _STATIC:
        return JSONResponse(error_body("not_found", "no such file"), status_code=404)
    return FileResponse(STATIC / name, media_type=_STATIC[name], headers={"Cache-Control": "public, max-age=300"})


def _refused(request: Request, viewer: Viewer | None, status: int, title: str, message: str, *, back: str) -> Response:
    return page(request, "refused.html", status=status, title=title, message=message, back=back, viewer=viewer)


def _to_login(request: Request) -> Response:
    return RedirectResponse(f"/inbox/login?next={request.url.path}", status_code=303)


def _safe_next(target: str) -> str:
    """Only a path inside the inbox: `next=https://elsewhere` must not turn sign-in into an open redirect."""
    return (
        target
        if target.startswith("/inbox") and not target.startswith("/inbox/login") and "//" not in target
        else "/inbox"
    )


# -- signing in and out ---------------------------------------------------------------------


@router.get("/inbox/login")
async def login_page(request: Request, next: str = "/inbox", flash: str = "") -> Response:
    """The sign-in form (straight to the inbox when already signed in)."""
    if await viewer_of(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login(request, _safe_next(next), flash=_FLASHES.get(flash))


def _login(
    request: Request, target: str, *, error: str | None = None, status: int = 200, flash: str | None = None
) -> Response:
    csrf, nonce = login_token(request)
    shown = page(
        request, "login.html", status=status, title="Sign in", next=target, csrf=csrf, error=error, flash=flash
    )
    keep_login_nonce(request, shown, nonce)
    return shown


@router.post("/inbox/login")
async def login(request: Request) -> Response:
    """Check the key and set the session cookie; a wrong key, a key without `read` or a stale form is refused."""
    config = config_of(request)
    form = await _form(request)
    target = _safe_next(form.get("next", "/inbox"))
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not csrf_ok(config.secret, f"login:{nonce}" if nonce else None, form.get("csrf")):
        return _login(
            request, target, error="This form is out of date or came from another site; try again.", status=403
        )
    secret = form.get("key", "").strip()
    key = await config.keys.find(secret) if secret else None
    if key is None:
        return _login(request, target, error="This API key is not known.", status=401)
    if "read" not in key.scopes:
        return _login(request, target, error=f"The key {key.name!r} lacks the read scope.", status=403)
    response = RedirectResponse(target, status_code=303)
    sign_in(request, response, key)
    return response


async def _form(request: Request) -> dict[str, str]:
    """A posted form's text fields (files are not part of any inbox form)."""
    return {name: value for name, value in (await request.form()).items() if isinstance(value, str)}


@router.post("/inbox/logout")
async def logout(request: Request) -> Response:
    """End the session (a CSRF-checked form, so no other site can sign you out)."""
    viewer = await viewer_of(request)
    form = await _form(request)
    if viewer is not None and not viewer.accepts(form.get("csrf")):
        return _refused(request, viewer, 403, "Not signed out", "this form is out of date", back="/inbox")
    response = RedirectResponse("/inbox/login?flash=signed_out", status_code=303)
    sign_out(response)
    return response


# -- the list -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One thread waiting for a person, as the inbox lists it."""

    thread: Thread
    """The thread."""
    ask: Ask
    """What it asks."""

    @property
    def since(self) -> datetime:
        """When it started waiting."""
        return self.ask.event.at


async def _waiting(request: Request) -> tuple[list[Row], bool]:
    """The threads that wait for a person, most urgent first, then the longest waiting; and whether some were left out."""
    runtime = config_of(request).runtime
    pages = [await runtime.list(status=status, limit=_LISTED) for status in WAITING]
    summaries = [summary for listed in pages for summary in listed]

    async def load(thread_id: str) -> Thread | None:
        try:
            return await runtime.get(thread_id)
        except (ThreadNotFound, ThreadDecodeError) as exc:  # gone or set aside since it was listed
            log.warning("inbox skips thread %s: %s", thread_id, exc)
            return None

    rows: list[Row] = []
    for thread in await asyncio.gather(*(load(s.thread_id) for s in summaries)):
        if thread is not None and thread.pending is not None and thread.status in WAITING:
            rows.append(Row(thread, ask_of(runtime, thread, thread.pending, redaction=Redaction.of(runtime, thread))))
    rows.sort(key=lambda row: (URGENCY_RANK[row.ask.urgency], row.since, row.thread.id))
    return rows, any(len(listed) >= _LISTED for listed in pages)


@router.get("/inbox")
async def inbox(request: Request, flash: str = "") -> Response:
    """The threads waiting for a person, by urgency then age."""
    viewer = await viewer_of(request)
    if viewer is None:
        return _to_login(request)
    rows, more = await _waiting(request)
    return page(request, "inbox.html", title="Inbox", viewer=viewer, rows=rows, more=more, flash=_FLASHES.get(flash))


# -- one thread -----------------------------------------------------------------------------


async def _thread_page(
    request: Request, viewer: Viewer, thread: Thread, *, status: int = 200, **extra: Any
) -> Response:
    runtime = config_of(request).runtime
    redaction = Redaction.of(runtime, thread)
    pending = thread.pending if thread.status in WAITING else None
    ask = ask_of(runtime, thread, pending, redaction=redaction) if pending is not None else None
    return page(
        request,
        "thread.html",
        status=status,
        title=f"{thread.metadata.get('agent', 'thread')} · {status_label(thread.status)}",
        viewer=viewer,
        thread=thread,
        ask=ask,
        events=timeline(thread, redaction, last=_SHOWN),
        hidden=max(0, len(thread) - _SHOWN),
        panel=_panel(viewer, thread, ask, extra.get("values") or {}),
        **await _steps(runtime, thread),
        **{"flash": None, "error": None, **extra},
    )


async def _steps(runtime: Runtime, thread: Thread) -> dict[str, Any]:
    """What the steps section shows: each model step's messages and tokens (None when they cannot be rendered here)."""
    agent = runtime.agents.get(str(thread.metadata.get("agent")))
    if agent is None or len(thread) > _SHOWN:
        return {"steps": None, "served": agent is not None}
    # The messages are rendered again by the agent's own code (`_steps`): CPU work, off the event loop.
    steps = await asyncio.to_thread(model_steps, agent, thread)
    return {
        "steps": [(s, list(zip(s.messages, s.tokens, strict=True))) for s in steps],
        "served": True,
    }


def _panel(viewer: Viewer, thread: Thread, ask: Ask | None, values: dict[str, str]) -> str:
    """The pending request's controls, as the page shows them and the stream re-sends them when the request changes."""
    action = (
        f"/inbox/threads/{quote(thread.id, safe='')}/requests/{quote(ask.event.id, safe='')}" if ask is not None else ""
    )
    return render("_panel.html", viewer=viewer, thread=thread, ask=ask, action=action, values=values)


@router.get("/inbox/threads/{thread_id}")
async def thread_page(request: Request, thread_id: ThreadId, flash: str = "") -> Response:
    """A thread: its status, what it waits for (with the controls), its timeline, live."""
    viewer = await viewer_of(request)
    if viewer is None:
        return _to_login(request)
    try:
        thread = await config_of(request).runtime.get(thread_id)
    except ThreadNotFound:
        return _refused(request, viewer, 404, "No such thread", f"no thread has the id {thread_id!r}", back="/inbox")
    return await _thread_page(request, viewer, thread, flash=_FLASHES.get(flash))


@router.get("/inbox/threads/{thread_id}/steps")
async def steps(request: Request, thread_id: ThreadId) -> Response:
    """The model-steps section alone: the thread page fetches it again when the stream brings a new step."""
    if await viewer_of(request) is None:
        return JSONResponse(error_body("unauthorized", "sign in to the inbox first"), status_code=401)
    runtime = config_of(request).runtime
    try:
        thread = await runtime.get(thread_id)
    except ThreadNotFound:
        return JSONResponse(error_body("thread_not_found", f"no thread has the id {thread_id!r}"), status_code=404)
    return fragment(render("_steps.html", thread=thread, **await _steps(runtime, thread)))


@router.post("/inbox/threads/{thread_id}/requests/{event_id}")
async def decide(request: Request, thread_id: ThreadId, event_id: str) -> Response:
    """Approve (with the edited arguments), reject with feedback, or answer the thread's pending request."""
    viewer = await viewer_of(request)
    if viewer is None:
        return _to_login(request)
    form = await _form(request)
    if not viewer.accepts(form.get("csrf")):
        return _refused(
            request,
            viewer,
            403,
            "Not sent",
            "this form is out of date or came from another site: open the thread again",
            back=f"/inbox/threads/{quote(thread_id, safe='')}",
        )
    runtime = config_of(request).runtime
    try:
        thread = await runtime.get(thread_id)
    except ThreadNotFound:
        return _refused(request, viewer, 404, "No such thread", f"no thread has the id {thread_id!r}", back="/inbox")
    if not viewer.can_decide:
        return await _thread_page(
            request,
            viewer,
            thread,
            status=403,
            error=f"The key {viewer.key.name!r} lacks the approve scope: it can read, not decide.",
        )
    event = thread.find(event_id)
    if event is None:
        return await _thread_page(request, viewer, thread, status=404, error="This thread has no such request.")
    ask = ask_of(runtime, thread, event, redaction=Redaction.of(runtime, thread))
    try:
        answer = read_form(ask, form)
        await give(runtime, thread_id, ask, answer, by=viewer.by)
    except (FormError, UserError) as exc:
        return await _thread_page(request, viewer, thread, status=422, error=f"Not sent: {exc}.", values=form)
    except InvalidTransition:
        thread = await runtime.get(thread_id)
        decided = decision_of(thread, event_id)
        said = (
            f"it was answered already by {decided.by}"
            if decided
            else f"the thread is {status_label(thread.status).lower()} now"
        )
        return await _thread_page(request, viewer, thread, status=409, error=f"Not sent: {said}.")
    flash: dict[str, str] = {"approve": "approved", "reject": "rejected", "respond": "answered"}
    return RedirectResponse(
        f"/inbox/threads/{quote(thread_id, safe='')}?flash={flash[answer.decision]}", status_code=303
    )


# -- live updates -----------------------------------------------------------------------------


@router.get("/inbox/threads/{thread_id}/stream", response_class=EventSourceResponse)
async def stream(request: Request, thread_id: ThreadId, after: str = "") -> AsyncIterator[ServerSentEvent]:
    """The API's event stream of the thread, each event as a timeline entry, and the thread's state when it changes.

    Sends `append` (an event's entry, its id the SSE id: the browser resumes with `Last-Event-ID`),
    `state` (status, waiting reason, and the pending request's controls) whenever the status or the
    pending request moves, and `end` once the thread is done or failed. `after` is the newest event
    the page shows.
    """
    viewer = await viewer_of(request)
    if viewer is None:
        yield ServerSentEvent(event="signed_out", data={"login": "/inbox/login"})
        return
    runtime = config_of(request).runtime
    try:
        thread = await runtime.get(thread_id)
    except ThreadNotFound:
        yield ServerSentEvent(event="gone", data={"thread_id": thread_id})
        return
    try:
        start = resume_at(thread, request.headers.get("last-event-id") or after or None)
    except ApiError:  # an id this thread does not have: send it all
        start = 0
    # The thread as the page has it, grown by each streamed event: its fold says the status after each.
    known = Thread(thread.events[:start], thread_id=thread.id, metadata=thread.metadata)
    shown = _waits_for(known)
    redaction = Redaction.of(runtime, thread)
    signed_out = ServerSentEvent(event="signed_out", data={"login": "/inbox/login"})

    async def still_signed_in() -> bool:
        return await viewer_of(request) is not None

    # Raw: the fold below needs the events as logged; `view` redacts what the page shows of each.
    streamed = stream_events(runtime, thread, start, allowed=still_signed_in, refusal=signed_out, raw=True)
    async for sent in streamed:
        if isinstance(sent.data, EventOut):
            event = Event(sent.data.type, sent.data.data, id=sent.data.id, at=sent.data.at)
            known = known.append(event)
            redaction = redaction.seeing((event,))  # a secret first logged now is hidden from here on
            entry = {"html": render("_event.html", v=view(event, redaction)), "step": model_record(event) is not None}
            yield ServerSentEvent(event="append", id=event.id, data=entry)
            if _waits_for(known) != shown:
                shown = _waits_for(known)
                yield ServerSentEvent(event="state", data=_state(runtime, viewer, known, redaction))
        else:
            yield sent  # a heartbeat, or the `end` once the thread is done or failed


def _waits_for(thread: Thread) -> tuple[str, str | None]:
    """The status, and what the thread waits for a person about: what the page shows above the timeline."""
    pending = thread.pending if thread.status in WAITING else None
    return thread.status, pending.id if pending is not None else None


def _state(runtime: Runtime, viewer: Viewer, thread: Thread, redaction: Redaction) -> dict[str, str]:
    status, pending = _waits_for(thread)
    ask = ask_of(runtime, thread, thread.pending, redaction=redaction) if pending and thread.pending else None
    return {
        "status": status,
        "label": status_label(status),
        "reason": str(ticks(thread.waiting_reason or "")),
        "pending": pending or "",
        "panel": str(_panel(viewer, thread, ask, {})),
    }
