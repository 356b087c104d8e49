"""An eval run's report: per case and per model; a terminal table, JSON, and a baseline to compare with."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from threadloom import UserError

from ._html import render_html
from ._results import Attempt, CaseReport, ModelSummary, Regression, first_reason

__all__ = ["Report", "load_baseline", "summarise"]

_BASELINE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Report:
    """What an eval run found.

    Example:
        ```python
        from threadloom import Thread
        from threadloom.evals import Case, NextIntent, evaluate_sync
        from threadloom import Agent
        from threadloom.models import ScriptedModel

        agent = Agent(name="greeter", model=ScriptedModel(['{"intent": "done_for_now", "message": "hi"}'] * 2))
        case = Case("greets", Thread.start("user_input", {"text": "hi"}), [NextIntent("done_for_now")])
        report = evaluate_sync(agent, [case], repeats=2)
        assert report.pass_rate == 1.0 and report.regressions({"cases": {"greets": {"scripted": 1.0}}}) == []
        ```
    """

    cases: tuple[CaseReport, ...]
    """Per case and model, in the order they were given."""
    title: str = "threadloom eval"
    """The report's heading."""
    models: tuple[ModelSummary, ...] = field(default=())
    """Per model totals."""

    @property
    def pass_rate(self) -> float:
        """The share of all attempts that passed."""
        attempts = [a for c in self.cases for a in c.attempts]
        return sum(a.passed for a in attempts) / len(attempts) if attempts else 0.0

    @property
    def failures(self) -> list[tuple[CaseReport, Attempt]]:
        """Every failed attempt, with its case."""
        return [(c, a) for c in self.cases for a in c.attempts if not a.passed]

    # -- baseline ---------------------------------------------------------------------------

    def baseline(self) -> dict[str, Any]:
        """The pass rates to compare later runs with: `{"version": 1, "cases": {case: {model: rate}}}`."""
        cases: dict[str, dict[str, float]] = {}
        for report in self.cases:
            cases.setdefault(report.case, {})[report.model] = round(report.pass_rate, 4)
        return {"version": _BASELINE_VERSION, "cases": cases}

    def save_baseline(self, path: str | os.PathLike[str]) -> None:
        """Write `baseline()` as JSON to `path`."""
        Path(path).write_text(json.dumps(self.baseline(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def regressions(self, baseline: Mapping[str, Any], *, tolerance: float = 0.0) -> list[Regression]:
        """Cases whose pass rate fell more than `tolerance` below the baseline's (new cases are none).

        Args:
            baseline: What `baseline()` returned, or `load_baseline(path)`.
            tolerance: How far a pass rate may drop before it counts (e.g. 0.1 for stochastic models).

        Raises:
            UserError: `baseline` is not a baseline's shape (the report itself is kept).
        """
        rates = _rates(baseline, "the baseline")
        found: list[Regression] = []
        for report in self.cases:
            before = rates.get(report.case, {}).get(report.model)
            if before is not None and report.pass_rate < before - tolerance - 1e-9:
                found.append(Regression(report.case, report.model, before, report.pass_rate))
        return found

    # -- output -----------------------------------------------------------------------------

    def to_json(self, *, indent: int | None = 2) -> str:
        """The whole report as JSON (cases, attempts, checks, rendered contexts, per-model totals)."""
        document = {
            "title": self.title,
            "pass_rate": self.pass_rate,
            "models": [asdict(m) for m in self.models],
            "cases": [
                {
                    "case": c.case,
                    "model": c.model,
                    "pass_rate": c.pass_rate,
                    "attempts": [asdict(a) for a in c.attempts],
                }
                for c in self.cases
            ],
        }
        return json.dumps(document, indent=indent, ensure_ascii=False)

    def to_html(self) -> str:
        """One self-contained HTML page (no scripts, no links out): totals, cases, and every failure."""
        return render_html(self.title, self.cases, self.models)

    def print(self, console: Any = None) -> None:
        """Print the per-model and per-case tables to the terminal (rich)."""
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        out = cast("Console", console or Console())
        models = Table(title=f"{self.title}: models")
        for column in ("model", "attempts", "pass rate", "tokens in", "tokens out", "cost", "p50 ms", "max ms"):
            models.add_column(column, justify="left" if column == "model" else "right")
        for m in self.models:
            models.add_row(
                Text(m.model),
                str(m.attempts),
                f"{m.pass_rate:.0%}",
                str(m.input_tokens),
                str(m.output_tokens),
                _dollars(m.cost),
                f"{m.latency_ms_p50:.0f}",
                f"{m.latency_ms_max:.0f}",
            )
        out.print(models)
        cases = Table(title=f"{self.title}: cases")
        for column in ("case", "model", "pass rate", "first failure"):
            cases.add_column(column)
        for c in self.cases:
            failed = next((a for a in c.attempts if not a.passed), None)
            reason = "" if failed is None else first_reason(failed)
            style = "green" if c.pass_rate == 1 else "red"
            cases.add_row(Text(c.case), Text(c.model), Text(f"{c.pass_rate:.0%}", style), Text(reason[:100]))
        out.print(cases)


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def summarise(cases: Sequence[CaseReport]) -> tuple[ModelSummary, ...]:
    """Per-model totals of these case reports, in the order the models first appear."""
    by_model: dict[str, list[Attempt]] = {}
    for report in cases:
        by_model.setdefault(report.model, []).extend(report.attempts)
    summaries: list[ModelSummary] = []
    for model, attempts in by_model.items():
        costs = [a.cost for a in attempts if a.cost is not None]
        latencies = [a.latency_ms for a in attempts] or [0.0]
        summaries.append(
            ModelSummary(
                model=model,
                attempts=len(attempts),
                pass_rate=sum(a.passed for a in attempts) / len(attempts) if attempts else 0.0,
                input_tokens=sum(a.input_tokens for a in attempts),
                output_tokens=sum(a.output_tokens for a in attempts),
                cost=sum(costs) if costs else None,
                latency_ms_p50=statistics.median(latencies),
                latency_ms_max=max(latencies),
            )
        )
    return tuple(summaries)


def load_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a baseline file that `Report.save_baseline` wrote.

    Raises:
        UserError: The file is not a baseline.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read baseline {str(path)!r}: {exc}") from exc
    _rates(document, repr(str(path)))
    return cast("dict[str, Any]", document)


def _rates(document: object, where: str) -> Mapping[str, Mapping[str, float]]:
    """The pass rates of a baseline, case -> model -> rate, checked whole so that no comparison fails halfway.

    Raises:
        UserError: `document` is not a baseline; the message names the case and model.
    """
    cases = cast("dict[str, Any]", document).get("cases") if isinstance(document, dict) else None
    if not isinstance(cases, dict):
        raise UserError(f"{where} is not a baseline: it needs a `cases` mapping of case -> model -> pass rate")
    for case, models in cast("dict[str, Any]", cases).items():
        if not isinstance(models, dict):
            raise UserError(
                f"{where} is not a baseline: case {case!r} holds {models!r}, not a mapping of model -> pass rate"
            )
        for model, rate in cast("dict[str, Any]", models).items():
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise UserError(
                    f"{where} is not a baseline: case {case!r}, model {model!r}: {rate!r} is not a pass rate from 0 to 1"
                )
    return cast("Mapping[str, Mapping[str, float]]", cases)
