"""What a case expects: the next intent and its fields, a predicate, a run's outcome, a judge's verdict."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from threadloom import Message, ModelError, ParseError, Thread, UserError, parse
from threadloom.models import Completion, Model, ModelRequest, Usage

__all__ = [
    "Check",
    "CheckResult",
    "Judge",
    "Matcher",
    "NextIntent",
    "OneOf",
    "Outcome",
    "Predicate",
    "Range",
    "Regex",
    "Sample",
    "tools_called",
]


@dataclass(frozen=True, slots=True)
class Sample:
    """What one attempt at a case produced, for the checks to judge."""

    thread: Thread
    """The case's thread, as the model saw it (before the step)."""
    messages: tuple[Message, ...]
    """The exact rendered messages of the first model call."""
    intent: str | None
    """The next intent's name, or None when the model's answer was not a valid intent."""
    fields: Mapping[str, Any]
    """The next intent's fields (a tool call's arguments), without `intent`."""
    answer: str
    """What the model answered, as JSON of the recorded event (or the raw text that did not parse)."""
    _: KW_ONLY
    run: Thread | None = None
    """The thread after the whole run, when a check asked for one (`Outcome`)."""
    usage: Usage = field(default_factory=lambda: Usage(requests=0))
    """Tokens of every model call of this attempt (checks' own judges excluded)."""
    latency_ms: float = 0.0
    """Wall-clock time of the model calls."""
    models: tuple[str, ...] = ()
    """The model names that answered."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's verdict on one attempt."""

    check: str
    """The check, as a short description (`intent == deploy_backend`)."""
    passed: bool
    """Whether the attempt met it."""
    detail: str = ""
    """Why not (or a judge's reason)."""


@runtime_checkable
class Check(Protocol):
    """Anything that judges a `Sample`; `needs_run` asks the runner to run the agent to its stop."""

    @property
    def needs_run(self) -> bool:
        """True when the check looks at the whole run, not only the next step."""
        ...

    async def check(self, sample: Sample) -> CheckResult:
        """Judge one attempt."""
        ...


# -- field matchers ---------------------------------------------------------------------------


class Matcher(Protocol):
    """A test on one field's value, other than equality."""

    def matches(self, value: object) -> bool:
        """Whether `value` passes."""
        ...


@dataclass(frozen=True, slots=True)
class OneOf:
    """The field is one of these values."""

    values: tuple[object, ...]
    """The values allowed."""

    def __init__(self, *values: object) -> None:
        object.__setattr__(self, "values", values)

    def matches(self, value: object) -> bool:
        """Whether `value` equals one of the allowed values."""
        return value in self.values

    def __str__(self) -> str:
        return f"one of {list(self.values)!r}"


@dataclass(frozen=True, slots=True)
class Regex:
    """The field is a string the pattern matches (`re.search`: anywhere, unless anchored)."""

    pattern: str
    """The regular expression."""

    def matches(self, value: object) -> bool:
        """Whether `value` is a string the pattern finds a match in.

        Raises:
            UserError: The pattern is not a regular expression (`NextIntent` fails the field with it).
        """
        try:
            return isinstance(value, str) and re.search(self.pattern, value) is not None
        except re.error as exc:
            raise UserError(f"the pattern {self.pattern!r} is not a regular expression ({exc})") from exc

    def __str__(self) -> str:
        return f"matches /{self.pattern}/"


@dataclass(frozen=True, slots=True)
class Range:
    """The field is a number between `min` and `max`, both included (either may be left out)."""

    min: float = -math.inf
    """The smallest value allowed."""
    max: float = math.inf
    """The largest value allowed."""

    def matches(self, value: object) -> bool:
        """Whether `value` is a number (not a bool) within the range."""
        return isinstance(value, int | float) and not isinstance(value, bool) and self.min <= value <= self.max

    def __str__(self) -> str:
        return f"in [{self.min}, {self.max}]"


def _field_ok(expected: object, value: object) -> bool:
    if hasattr(expected, "matches"):
        matcher: Matcher = expected  # pyright: ignore[reportAssignmentType]
        return matcher.matches(value)
    return expected == value


# -- checks -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class NextIntent:
    r"""The model's next step is `intent`, with these fields: exact values or `OneOf`, `Regex`, `Range`.

    Example:
        ```python
        from threadloom.evals import NextIntent, OneOf, Regex

        check = NextIntent("deploy_backend", tag=Regex(r"^v1\.2\."), environment=OneOf("staging", "production"))
        assert str(check) == "deploy_backend(tag matches /^v1\\.2\\./, environment one of ['staging', 'production'])"
        ```
    """

    intent: str | OneOf
    """The intent's name, or `OneOf(names)`."""
    fields: Mapping[str, object]
    """Field name to the expected value or a matcher; fields not named are not looked at."""

    def __init__(self, intent: str | OneOf, /, **fields: object) -> None:
        object.__setattr__(self, "intent", intent)
        object.__setattr__(self, "fields", fields)

    @property
    def needs_run(self) -> bool:
        """Only the next step is needed."""
        return False

    async def check(self, sample: Sample) -> CheckResult:
        """Compare the sample's next intent and fields."""
        if sample.intent is None or not _field_ok(self.intent, sample.intent):
            got = sample.intent or f"no valid intent ({sample.answer[:200]})"
            return CheckResult(str(self), False, f"intent: expected {self.intent}, got {got}")
        wrong: list[str] = []
        for name, want in self.fields.items():
            try:
                ok = name in sample.fields and _field_ok(want, sample.fields[name])
            except UserError as exc:  # a matcher that cannot judge (a bad pattern): this field fails with why
                wrong.append(f"{name}: {exc}")
                continue
            if not ok:
                wrong.append(f"{name}: expected {_show(want)}, got {json.dumps(sample.fields.get(name, '<missing>'))}")
        return CheckResult(str(self), not wrong, "; ".join(wrong))

    def __str__(self) -> str:
        parts = [f"{name} {_show_matcher(want)}" for name, want in self.fields.items()]
        return f"{self.intent}({', '.join(parts)})"


def _show(expected: object) -> str:
    return str(expected) if hasattr(expected, "matches") else json.dumps(expected, default=str)


def _show_matcher(expected: object) -> str:
    return str(expected) if hasattr(expected, "matches") else f"== {json.dumps(expected, default=str)}"


@dataclass(frozen=True, slots=True)
class Predicate:
    """Your own test in Python: a function of the sample that returns True to pass."""

    function: Callable[[Sample], bool]
    """The test."""
    name: str = ""
    """How the report names it (the function's name when empty)."""
    _: KW_ONLY
    needs_run: bool = False
    """True when the function looks at `sample.run` (the whole run)."""

    async def check(self, sample: Sample) -> CheckResult:
        """Call the function; an exception fails the check with its message."""
        name = self.name or getattr(self.function, "__name__", "predicate")
        try:
            passed = bool(self.function(sample))
        except Exception as exc:  # user code: its failure is this check's verdict
            return CheckResult(name, False, f"{type(exc).__name__}: {exc}")
        return CheckResult(name, passed, "" if passed else "returned False")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the whole run ended: its status and the tools it called (prefetches left out), in order."""

    status: str | None = None
    """The thread's status at the stop (`done`, `waiting_approval`, ...); None to not look."""
    tools: Sequence[str] | None = None
    """The tool intents the model called, in order; None to not look."""

    @property
    def needs_run(self) -> bool:
        """The whole run is needed."""
        return True

    async def check(self, sample: Sample) -> CheckResult:
        """Compare the run's end status and its tool calls."""
        run = sample.run
        if run is None:  # pragma: no cover - the runner always runs a case with an Outcome
            return CheckResult(str(self), False, "the case was not run to its stop")
        problems: list[str] = []
        if self.status is not None and run.status != self.status:
            problems.append(f"status: expected {self.status}, got {run.status}")
        called = tools_called(run, after=len(sample.thread.events))
        if self.tools is not None and called != list(self.tools):
            problems.append(f"tools: expected {list(self.tools)}, got {called}")
        return CheckResult(str(self), not problems, "; ".join(problems))

    def __str__(self) -> str:
        parts = [f"status == {self.status}"] if self.status is not None else []
        if self.tools is not None:
            parts.append(f"tools == {list(self.tools)}")
        return "outcome(" + ", ".join(parts) + ")"


def tools_called(thread: Thread, *, after: int = 0) -> list[str]:
    """The tool intents the model called after the first `after` events, prefetches left out."""
    names: list[str] = []
    for event in thread.events[after:]:
        data = event.data
        if event.type == "tool_call" and isinstance(data, dict) and not data.get("prefetch"):
            names.append(str(data.get("intent")))
    return names


class Verdict(BaseModel):
    """What a judge answers."""

    passed: bool
    """Whether the answer meets the judge's criterion."""
    reason: str = ""
    """Why, in a sentence."""


JUDGE_PROMPT = (
    "You judge one step of an AI agent. Read the conversation the agent saw and the answer it gave, "
    "and decide whether the answer meets the criterion. Reply with one JSON object: "
    '{"passed": true or false, "reason": "one sentence"}.'
)
"""The judge's system prompt before the criterion (pass `prompt=` for your own)."""


@dataclass(frozen=True, slots=True)
class Judge:
    """An LLM judge: its own model reads the context and the answer and says whether `criterion` holds.

    Example:
        ```python
        import asyncio

        from threadloom import Thread
        from threadloom.evals import Judge, Sample
        from threadloom.models import ScriptedModel

        judge = Judge("The bot deploys the newest tag.", model=ScriptedModel(['{"passed": true, "reason": "v1.2.3"}']))
        sample = Sample(Thread.start("user_input", {"text": "deploy"}), (), "deploy_backend", {"tag": "v1.2.3"}, "{}")
        assert asyncio.run(judge.check(sample)).passed
        ```
    """

    criterion: str
    """What a good answer does, in plain words."""
    _: KW_ONLY
    model: Model
    """The judge's model (another model than the agent's, ideally; a `Cassette` replays it offline)."""
    prompt: str = JUDGE_PROMPT
    """The judge's instructions; the criterion follows them."""
    name: str = ""
    """How the report names it (`judge: CRITERION` when empty)."""
    needs_run: Literal[False] = False
    """A judge looks at the next step."""

    async def check(self, sample: Sample) -> CheckResult:
        """Ask the judge's model; an answer that is not a verdict fails the check."""
        context = "\n\n".join(f"[{m.role}]\n{m.content}" for m in sample.messages)
        request = ModelRequest(
            messages=(
                Message("system", f"{self.prompt}\n\nCriterion: {self.criterion}"),
                Message("user", f"<context>\n{context}\n</context>\n<answer>\n{sample.answer}\n</answer>"),
            ),
            output_schema=Verdict.model_json_schema(),
            intent_names=(),
        )
        name = self.name or f"judge: {self.criterion}"
        try:
            completion: Completion = await self.model.complete(request)
        except ModelError as exc:  # the judge could not judge: this check fails, the run goes on
            return CheckResult(name, False, f"the judge's model failed: {type(exc).__name__}: {exc}")
        try:
            verdict = parse(completion.text, Verdict)
        except ParseError as exc:
            return CheckResult(name, False, f"the judge's answer is not a verdict: {exc}")
        return CheckResult(name, verdict.passed, verdict.reason)
