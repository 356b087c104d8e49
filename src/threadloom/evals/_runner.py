"""The eval runner: every case against every agent, repeated, concurrently, retrying provider errors."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, cast

from pydantic import JsonValue

from threadloom import Agent, Event, ModelError, Thread, UserError
from threadloom._thread_redaction import ThreadRedaction
from threadloom.models import Usage, cost

from ._case import Case
from ._checks import Check, CheckResult, Sample
from ._report import Report, summarise
from ._results import Attempt, CaseReport

__all__ = ["Suite", "evaluate", "evaluate_sync"]


@dataclass(frozen=True, slots=True)
class Suite:
    """Agents and the cases to run them on, with the run's options: what `threadloom eval run` loads.

    Example:
        ```python
        from threadloom import Agent, Thread
        from threadloom.evals import Case, NextIntent, Suite
        from threadloom.models import ScriptedModel

        agent = Agent(name="greeter", model=ScriptedModel(['{"intent": "done_for_now", "message": "hi"}']))
        suite = Suite([agent], [Case("greets", Thread.start("user_input", {"text": "hi"}), [NextIntent("done_for_now")])])
        assert suite.run_sync().pass_rate == 1.0
        ```
    """

    agents: Sequence[Agent]
    """The agents to evaluate (one per model to compare)."""
    cases: Sequence[Case]
    """The cases."""
    _: KW_ONLY
    title: str = "threadloom eval"
    """The report's heading."""
    repeats: int = 1
    """Attempts per case and agent (a pass rate for stochastic models)."""
    concurrency: int = 4
    """Attempts in flight at once."""
    retries: int = 2
    """Retries of an attempt whose model call raised `ModelError` (rate limits, 5xx, timeouts)."""
    prices: Mapping[str, Any] | None = None
    """Prices laid over `threadloom.models.PRICES` for the cost column."""

    async def run(self, *, progress: bool = False) -> Report:
        """Run every case; see `evaluate`."""
        return await evaluate(
            self.agents,
            self.cases,
            title=self.title,
            repeats=self.repeats,
            concurrency=self.concurrency,
            retries=self.retries,
            prices=self.prices,
            progress=progress,
        )

    def run_sync(self, *, progress: bool = False) -> Report:
        """`run` for code without an event loop."""
        return asyncio.run(self.run(progress=progress))


async def evaluate(
    agents: Agent | Sequence[Agent],
    cases: Sequence[Case],
    *,
    title: str = "threadloom eval",
    repeats: int = 1,
    concurrency: int = 4,
    retries: int = 2,
    retry_delay: float = 0.5,
    prices: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> Report:
    """Run each case `repeats` times against each agent and judge every attempt.

    A case whose checks look only at the next step costs one model call (`agent.step`); one with an
    `Outcome` (or a predicate with `needs_run=True`) runs the agent until the thread must stop.

    Args:
        agents: One agent, or several to compare (their model names key the report).
        cases: The cases; their names must be unique.
        title: The report's heading.
        repeats: Attempts per case and agent.
        concurrency: Attempts in flight at once.
        retries: Retries after a `ModelError` before the attempt counts as failed with that error.
        retry_delay: Seconds before the first retry; doubled for each next one.
        prices: Prices laid over `threadloom.models.PRICES`.
        progress: Show a rich progress bar on the terminal.

    Returns:
        The report, cases in the order given, for each agent in turn.

    Raises:
        UserError: No cases, repeated case names, or options below 1.
    """
    group = [agents] if isinstance(agents, Agent) else list(agents)
    names = [case.name for case in cases]
    if not cases or not group:
        raise UserError("evaluate needs at least one agent and one case")
    if len(set(names)) != len(names):
        raise UserError(f"case names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    if repeats < 1 or concurrency < 1 or retries < 0:
        raise UserError("repeats and concurrency must be at least 1, retries at least 0")
    gate = asyncio.Semaphore(concurrency)
    jobs = [(agent, case) for agent in group for case in cases]
    bar = _Progress(len(jobs) * repeats, title) if progress else None

    async def attempt(agent: Agent, case: Case) -> Attempt:
        async with gate:
            result = await _attempt(agent, case, retries, retry_delay, prices)
        if bar is not None:
            bar.advance()
        return result

    try:
        results = await asyncio.gather(*(attempt(agent, case) for agent, case in jobs for _ in range(repeats)))
    finally:
        if bar is not None:
            bar.stop()
    _save_cassettes(group)
    reports = tuple(
        CaseReport(case.name, agent.model.name, tuple(results[i * repeats : (i + 1) * repeats]))
        for i, (agent, case) in enumerate(jobs)
    )
    return Report(reports, title=title, models=summarise(reports))


def evaluate_sync(agents: Agent | Sequence[Agent], cases: Sequence[Case], **options: Any) -> Report:
    """`evaluate` for code without an event loop (same options)."""
    return asyncio.run(evaluate(agents, cases, **options))


def _save_cassettes(agents: Sequence[Agent]) -> None:
    """Write the cassettes the agents recorded into (a replay writes nothing)."""
    from threadloom.models.cassette import Cassette

    for agent in agents:
        model: object = agent.model
        seen: set[int] = set()
        # A wrapper (tracing's TracedModel) holds the cassette as `.inner`; a cassette's own is what it records.
        while not isinstance(model, Cassette) and id(model) not in seen:
            seen.add(id(model))
            model = getattr(model, "inner", None)
        if isinstance(model, Cassette):
            model.save()


class _Progress:
    def __init__(self, total: int, title: str) -> None:
        from rich.progress import Progress

        self._progress = Progress(transient=False)
        self._task = self._progress.add_task(title, total=total)
        self._progress.start()

    def advance(self) -> None:
        self._progress.advance(self._task)

    def stop(self) -> None:
        self._progress.stop()


class _ProviderFailed(Exception):
    """A run whose loop recorded a model call that failed (the loop catches `ModelError` itself)."""

    def __init__(self, message: str, redaction: ThreadRedaction) -> None:
        super().__init__(message)
        self.redaction = redaction
        """The run's redaction, which knows the secrets of its new events too."""


async def _attempt(agent: Agent, case: Case, retries: int, delay: float, prices: Mapping[str, Any] | None) -> Attempt:
    messages = tuple(m.to_dict() for m in agent.render(case.thread))
    tries = 0
    while True:
        try:
            sample, redaction = await _sample(agent, case)
            break
        except (ModelError, _ProviderFailed) as exc:
            if tries >= retries:
                return Attempt(False, (), "", messages, error=_error(agent, case, exc), retries=tries)
            await asyncio.sleep(delay * 2**tries)
            tries += 1
        except Exception as exc:  # a cassette mismatch, a broken tool: the case fails with why
            return Attempt(False, (), "", messages, error=_error(agent, case, exc), retries=tries)
    # A verdict may quote a field (`got "..."`): a secret one is shown as the answer shows it.
    results = [_redacted(await _judged(check, sample), redaction) for check in case.checks]
    spent = cost(dict.fromkeys(sample.models[:1], sample.usage), prices=prices) if sample.models else None
    priced = spent is not None and not spent.unpriced
    return Attempt(
        all(r.passed for r in results),
        tuple(results),
        sample.answer,
        messages,
        input_tokens=sample.usage.input_tokens,
        output_tokens=sample.usage.output_tokens,
        requests=sample.usage.requests,
        latency_ms=sample.latency_ms,
        cost=spent.total if priced and spent is not None else None,
        retries=tries,
    )


def _error(agent: Agent, case: Case, exc: Exception) -> str:
    """Why an attempt could not be judged, redacted as its report is: its text may quote the thread's secrets."""
    if isinstance(exc, _ProviderFailed):  # the loop's error message, which names the model's error type itself
        return str(exc.redaction.apply(str(exc)))
    return str(_redaction(agent, case.thread.events).apply(f"{type(exc).__name__}: {exc}"))


async def _judged(check: Check, sample: Sample) -> CheckResult:
    """The check's verdict; a check that raises fails with why, and the run goes on to the other cases."""
    try:
        return await check.check(sample)
    except Exception as exc:  # a check of your own, or one that cannot judge: its error is its verdict
        return CheckResult(str(getattr(check, "name", "") or check), False, f"{type(exc).__name__}: {exc}")


def _redacted(result: CheckResult, redaction: ThreadRedaction) -> CheckResult:
    detail = redaction.apply(result.detail)
    return result if detail == result.detail else CheckResult(result.check, result.passed, str(detail))


async def _sample(agent: Agent, case: Case) -> tuple[Sample, ThreadRedaction]:
    """What the attempt produced, and how its report hides secrets: as the agent's context does."""
    messages = tuple(agent.render(case.thread))
    if not case.needs_run:
        event = await agent.step(case.thread)
        redaction = _redaction(agent, [*case.thread.events, event])
        return _sample_of(case.thread, messages, event, [event], None, redaction), redaction
    run = await agent.run(case.thread)
    new = list(run.events[len(case.thread.events) :])
    redaction = _redaction(agent, run.events)
    for event in new:
        data = _data(event)
        if event.type == "error" and data.get("source") == "model" and data.get("error_type") != "ParseError":
            raise _ProviderFailed(str(data.get("message")), redaction)
    decided = next((e for e in new if _decided_by_model(e)), None)
    return _sample_of(case.thread, messages, decided, new, run, redaction), redaction


def _redaction(agent: Agent, events: Sequence[Event]) -> ThreadRedaction:
    """How a report hides the secrets of `events`: as the agent's context does."""
    pattern = cast("re.Pattern[str] | None", agent.context.redact)  # a context compiles a pattern given as text
    return ThreadRedaction.found_in(events, pattern, agent.context.secret_keys)


def _sample_of(
    thread: Thread,
    messages: tuple[Any, ...],
    event: Event | None,
    new: list[Event],
    run: Thread | None,
    redaction: ThreadRedaction,
) -> Sample:
    usage, latency, models = Usage(requests=0), 0.0, list[str]()
    for item in new:
        record = _data(item).get("model")
        if isinstance(record, dict):
            model = cast("dict[str, Any]", record)
            usage = usage + Usage(model["input_tokens"], model["output_tokens"], model["cached_tokens"])
            latency += float(model.get("latency_ms") or 0.0)
            if model["name"] not in models:
                models.append(str(model["name"]))
    intent, fields, answer = _decision(event, redaction)
    return Sample(
        thread, messages, intent, fields, answer, run=run, usage=usage, latency_ms=latency, models=tuple(models)
    )


def _decision(event: Event | None, redaction: ThreadRedaction) -> tuple[str | None, dict[str, Any], str]:
    """The intent, its fields (as written, for the checks) and the answer as reports show it (redacted)."""
    if event is None:
        return None, {}, "(the model was not asked)"
    shown = redaction.event_data(event)
    fields, shown_fields = _fields(event.type, event.data), _fields(event.type, shown)
    if event.type == "error":
        data = cast("dict[str, Any]", shown) if isinstance(shown, dict) else {}
        return None, {}, f"{data.get('message')}\n{data.get('output', '')}".strip()
    name = str(_data(event).get("intent")) if event.type == "tool_call" else event.type
    return name, fields, json.dumps({"intent": name, **shown_fields}, ensure_ascii=False)


def _fields(event_type: str, data: JsonValue) -> dict[str, Any]:
    """An event's intent fields: a tool call's arguments, or the data, without the model record."""
    record = cast("dict[str, Any]", data) if isinstance(data, dict) else {}
    if event_type == "tool_call":
        return cast("dict[str, Any]", record.get("arguments") or {})
    return {k: v for k, v in record.items() if k != "model"}


def _decided_by_model(event: Event) -> bool:
    data = _data(event)
    return "model" in data or (event.type == "error" and data.get("source") == "model")


def _data(event: Event) -> dict[str, Any]:
    return cast("dict[str, Any]", event.data) if isinstance(event.data, dict) else {}
