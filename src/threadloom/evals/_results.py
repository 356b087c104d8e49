"""What an eval run found, piece by piece: each attempt, each case per model, each model's totals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._checks import CheckResult

__all__ = ["Attempt", "CaseReport", "ModelSummary", "Regression", "first_reason"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at one case: the checks' verdicts, what the model answered, and what it cost."""

    passed: bool
    """Every check passed and nothing failed."""
    results: tuple[CheckResult, ...]
    """Each check's verdict."""
    answer: str
    """The model's answer (the recorded next step as JSON, or the text that was not an intent)."""
    messages: tuple[Mapping[str, Any], ...]
    """The rendered context of the first model call (chat messages as dicts)."""
    error: str | None = None
    """Why the attempt could not be judged (a provider error after every retry, a cassette mismatch)."""
    input_tokens: int = 0
    """Prompt tokens of the agent's model calls."""
    output_tokens: int = 0
    """Tokens the agent's model wrote."""
    requests: int = 0
    """The agent's model calls."""
    latency_ms: float = 0.0
    """Time the model calls took."""
    cost: float | None = None
    """US dollars, when the model has a price (`threadloom.models.PRICES`, or yours)."""
    retries: int = 0
    """Provider errors retried before this attempt's result."""


@dataclass(frozen=True, slots=True)
class CaseReport:
    """A case's attempts against one model."""

    case: str
    """The case's name."""
    model: str
    """The agent's model name."""
    attempts: tuple[Attempt, ...]
    """One per repeat."""

    @property
    def pass_rate(self) -> float:
        """The share of attempts that passed, 0 to 1."""
        return sum(a.passed for a in self.attempts) / len(self.attempts) if self.attempts else 0.0


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """One model's totals over every case and repeat."""

    model: str
    """The model's name."""
    attempts: int
    """Attempts made."""
    pass_rate: float
    """The share that passed."""
    input_tokens: int
    """Prompt tokens."""
    output_tokens: int
    """Tokens written."""
    cost: float | None
    """US dollars; None when the model has no price."""
    latency_ms_p50: float
    """The median attempt's model time."""
    latency_ms_max: float
    """The slowest attempt's model time."""


@dataclass(frozen=True, slots=True)
class Regression:
    """A case that passes less often than the baseline says it did."""

    case: str
    """The case's name."""
    model: str
    """The model it regressed on."""
    baseline: float
    """The baseline's pass rate."""
    now: float
    """This run's pass rate."""

    def __str__(self) -> str:
        return f"{self.case} [{self.model}]: pass rate {self.baseline:.0%} -> {self.now:.0%}"


def first_reason(attempt: Attempt) -> str:
    """Why an attempt failed, in one line."""
    if attempt.error is not None:
        return attempt.error.splitlines()[0]
    failed = next((r for r in attempt.results if not r.passed), None)
    return "" if failed is None else f"{failed.check}: {failed.detail}"
