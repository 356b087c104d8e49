"""A request to a person as the pages show it, and the person's answer: read from a form or JSON, given, compared.

The answer-link page and the inbox's thread page decide the same way, through the runtime: approve
(with edited arguments), reject with feedback, or answer a question. A decision already recorded
is found again in the thread, so answering twice with the same answer changes nothing and a
different answer can be told when the first one was given, and by whom.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal, cast

from pydantic import JsonValue, ValidationError

from .._redact import REDACTED
from ..events import APPROVAL, HUMAN_RESPONSE, REQUEST_MORE_INFORMATION, TOOL_CALL, Event
from ..runtime import Runtime
from ..thread import Thread
from ._bodies import AnswerBody, DecisionBody
from ._fields import ArgumentField, FormError, fields_of, read_value
from ._redaction import Redaction

__all__ = [
    "URGENCY_RANK",
    "Answer",
    "Ask",
    "ChoiceError",
    "Decision",
    "ask_of",
    "check_choice",
    "choices_of",
    "decision_of",
    "give",
    "read_form",
    "read_json",
]

Urgency = Literal["low", "medium", "high"]
URGENCY_RANK: dict[str, int] = {"high": 0, "medium": 1, "low": 2}
"""Sort order of the inbox: high first (approvals count as high)."""


@dataclass(frozen=True, slots=True)
class Ask:
    """What a person is asked: an approval of a call, or a question; built from the request event."""

    event: Event
    """The `tool_call` waiting for approval, or the human request."""
    kind: Literal["approval", "question"]
    """Approve or reject a call, or answer in words."""
    question: str
    """The question, in one line."""
    _: KW_ONLY
    context: str = ""
    """What the request says the person needs to know."""
    urgency: Urgency = "medium"
    """How soon it needs an answer (approvals are high)."""
    format: str = "free_text"
    """`free_text`, `yes_no`, `multiple_choice` (questions) or `approval`."""
    choices: tuple[str, ...] = ()
    """The options of a multiple-choice question (yes / no for `yes_no`)."""
    intent: str = ""
    """The tool an approval would run."""
    fields: tuple[ArgumentField, ...] = field(default=())
    """The call's arguments, for an approval."""

    @property
    def arguments(self) -> dict[str, JsonValue]:
        """The call's arguments as the model chose them."""
        data = _data(self.event)
        arguments = data.get("arguments")
        return dict(cast(dict[str, JsonValue], arguments)) if isinstance(arguments, dict) else {}


@dataclass(frozen=True, slots=True)
class Answer:
    """What a person answered."""

    decision: Literal["approve", "reject", "respond"]
    """Which of the three."""
    _: KW_ONLY
    edits: Mapping[str, JsonValue] = field(default_factory=dict[str, JsonValue])
    """Arguments changed before approving."""
    feedback: str = ""
    """Why a call was rejected."""
    text: str = ""
    """The answer to a question."""


@dataclass(frozen=True, slots=True)
class Decision:
    """An answer recorded in the thread."""

    answer: Answer
    """What was answered."""
    event: Event
    """The `approval` or `human_response` event."""

    @property
    def by(self) -> str:
        """Who answered, as the event records it."""
        by = _data(self.event).get("by")
        return str(by) if by is not None else "unknown"

    def same_as(self, ask: Ask, answer: Answer) -> bool:
        """Whether `answer` says what this decision said (an approval compares the arguments it runs with)."""
        mine = self.answer
        if mine.decision != answer.decision:
            return False
        if mine.decision == "approve":
            return {**ask.arguments, **mine.edits} == {**ask.arguments, **answer.edits}
        if mine.decision == "reject":
            return mine.feedback.strip() == answer.feedback.strip()
        if ask.format in ("multiple_choice", "yes_no"):
            return mine.text.strip().casefold() == answer.text.strip().casefold()
        return mine.text.strip() == answer.text.strip()


def _data(event: Event) -> dict[str, Any]:
    return cast(dict[str, Any], event.data) if isinstance(event.data, dict) else {}


def ask_of(runtime: Runtime, thread: Thread, event: Event, *, redaction: Redaction) -> Ask:
    """What `event` (a call waiting for approval, or a human request) asks, typed by the agent's tool when known.

    Args:
        runtime: Its agents type the arguments (`agents[name].tools[intent].arguments`).
        thread: The thread the event belongs to.
        event: The request.
        redaction: The thread's: an argument it would redact (and a tool's secret field) is a secret field.
    """
    data = _data(event)
    if event.type == TOOL_CALL:
        intent = str(data.get("intent", ""))
        agent = runtime.agents.get(str(thread.metadata.get("agent")))
        tool = agent.tools.get(intent) if agent is not None else None
        schema: dict[str, Any] = tool.arguments.model_json_schema() if tool is not None else {}
        typed = tool.secret_fields if tool is not None else frozenset[str]()
        arguments = data.get("arguments")
        values = cast(dict[str, JsonValue], arguments) if isinstance(arguments, dict) else {}

        def secret(name: str, value: JsonValue) -> bool:
            return name in typed or redaction.hides(name, value)

        return Ask(
            event,
            "approval",
            f"Run `{intent}`?",
            urgency="high",
            format="approval",
            intent=intent,
            fields=fields_of(values, schema, secret),
        )
    if event.type == REQUEST_MORE_INFORMATION:
        return Ask(event, "question", str(data.get("message", "")))
    urgency = data.get("urgency")
    return Ask(
        event,
        "question",
        str(data.get("question", "")),
        context=str(data.get("context") or ""),
        urgency=cast(Urgency, urgency) if urgency in URGENCY_RANK else "medium",
        format=str(data.get("format", "free_text")),
        choices=choices_of(event),
    )


def choices_of(request: Event) -> tuple[str, ...]:
    """The choices a human request offers: yes / no for `yes_no`, its `choices` for `multiple_choice`, else none."""
    data = _data(request)
    form = data.get("format")
    if form == "yes_no":
        return ("yes", "no")
    choices: object = data.get("choices")
    if form != "multiple_choice" or not isinstance(choices, list):
        return ()
    return tuple(str(c) for c in cast(list[object], choices))


class ChoiceError(FormError):
    """A `choice` the request does not offer; `code` is `no_choices` or `not_a_choice`, as the API names it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_choice(choices: tuple[str, ...], choice: str) -> str:
    """`choice`, once it is exactly one of `choices` (the answer link, the inbox and the API check alike).

    Raises:
        ChoiceError: There are no choices, or none is `choice`.
    """
    if not choices:
        raise ChoiceError("no_choices", "this request offers no choices; answer with `text`")
    if choice not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ChoiceError("not_a_choice", f"{choice!r} is none of the request's choices: {listed}")
    return choice


# -- reading answers --------------------------------------------------------------------------


def read_form(ask: Ask, form: Mapping[str, str]) -> Answer:
    """The answer a page's form posted: `action` (approve / reject / respond) and its fields.

    Raises:
        FormError: A field does not hold what its type needs, the form answers something else, or
            its `choice` is none of the question's choices.
    """
    action = form.get("action", "")
    if ask.kind == "approval":
        if action == "reject":
            feedback = form.get("feedback", "").strip()
            if not feedback:
                raise FormError("say why you reject it: the agent reads your feedback")
            return Answer("reject", feedback=feedback)
        if action != "approve":
            raise FormError("choose approve or reject")
        edits: dict[str, JsonValue] = {}
        for item in ask.fields:
            raw = form.get(f"arg.{item.name}")
            if raw is None or (item.secret and raw == REDACTED):
                continue  # an argument the form left out, or a secret left as shown, keeps its value
            value = read_value(item, raw)
            if value != item.original:
                edits[item.name] = value
        return Answer("approve", edits=edits)
    if "choice" in form:  # a button of the request's choices
        return Answer("respond", text=check_choice(ask.choices, form["choice"]))
    text = form.get("text", "").strip()
    if not text:
        raise FormError("write an answer" if not ask.choices else "choose one of the answers")
    return Answer("respond", text=text)


def read_json(ask: Ask, body: object, redaction: Redaction) -> Answer:
    """The answer of a JSON body, as the API's own routes take it: `DecisionBody` for an approval, `AnswerBody` for a question.

    `redaction` is the thread's: an argument sent back as it shows it keeps its value.

    Raises:
        FormError: The body is not that shape (the message says what is wrong), or its `choice` is
            none of the question's choices (a `ChoiceError`, as the API's route refuses it).
    """
    try:
        if ask.kind == "approval":
            decision = DecisionBody.model_validate(body)
            if decision.decision == "reject":
                return Answer("reject", feedback=decision.feedback or "rejected")  # as the API records it
            # A secret sent back as shown (`[REDACTED]`, from a read of the call) keeps its value.
            return Answer("approve", edits=redaction.kept(ask.arguments, decision.edits or {}))
        answer = AnswerBody.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise FormError(problems) from None
    if answer.choice is not None:
        return Answer("respond", text=check_choice(ask.choices, answer.choice))
    return Answer("respond", text=answer.text or "")


# -- recorded decisions and giving one ----------------------------------------------------------


def decision_of(thread: Thread, event_id: str) -> Decision | None:
    """The decision recorded for the request `event_id`, or None while none is."""
    for event in thread.events:
        data = _data(event)
        if event.type == APPROVAL and data.get("call_id") == event_id:
            if data.get("approved"):
                edits = data.get("edits")
                changed = cast(dict[str, JsonValue], edits) if isinstance(edits, dict) else {}
                return Decision(Answer("approve", edits=dict(changed)), event)
            return Decision(Answer("reject", feedback=str(data.get("feedback") or "")), event)
        if event.type == HUMAN_RESPONSE and data.get("request_id") == event_id:
            return Decision(Answer("respond", text=str(data.get("text") or "")), event)
    return None


async def give(runtime: Runtime, thread_id: str, ask: Ask, answer: Answer, *, by: str) -> Thread:
    """Record `answer` to `ask` through the runtime (which checks it is still pending, and that edits fit the tool).

    Raises:
        InvalidTransition: The thread no longer waits for this request.
        UserError: The edits do not fit the tool, or the text is none of the choices.
    """
    match answer.decision:
        case "approve":
            return await runtime.approve(thread_id, ask.event.id, dict(answer.edits) or None, by=by)
        case "reject":
            return await runtime.reject(thread_id, ask.event.id, answer.feedback, by=by)
        case "respond":
            return await runtime.respond(thread_id, ask.event.id, _canonical(ask, answer.text), by=by)


def _canonical(ask: Ask, text: str) -> str:
    """A choice as the request spelled it (`Production` for `production`)."""
    for choice in ask.choices:
        if choice.strip().casefold() == text.strip().casefold():
            return choice
    return text
