"""Evals: cases (a thread and what should come next), a runner, reports and a baseline (extra `evals`).

A case is a thread, often stopped in the middle of a run, and checks on the next step: the intent
and its fields (`NextIntent` with exact values, `OneOf`, `Regex`, `Range`), a `Predicate` in
Python, a whole run's `Outcome`, or an LLM `Judge`. `evaluate` runs them, repeated and concurrent,
and returns a `Report` (terminal table, JSON, HTML, a baseline to catch regressions). See docs/evals.md.
"""

from ._assertions import assert_next_intent, assert_next_intent_sync
from ._case import Case, case_from_record, case_from_store, case_record, load_cases, parse_expect
from ._checks import (
    Check,
    CheckResult,
    Judge,
    Matcher,
    NextIntent,
    OneOf,
    Outcome,
    Predicate,
    Range,
    Regex,
    Sample,
    tools_called,
)
from ._replay import StepComparison, compare_decisions
from ._report import Report, load_baseline
from ._results import Attempt, CaseReport, ModelSummary, Regression
from ._runner import Suite, evaluate, evaluate_sync

__all__ = [
    "Attempt",
    "Case",
    "CaseReport",
    "Check",
    "CheckResult",
    "Judge",
    "Matcher",
    "ModelSummary",
    "NextIntent",
    "OneOf",
    "Outcome",
    "Predicate",
    "Range",
    "Regex",
    "Regression",
    "Report",
    "Sample",
    "StepComparison",
    "Suite",
    "assert_next_intent",
    "assert_next_intent_sync",
    "case_from_record",
    "case_from_store",
    "case_record",
    "compare_decisions",
    "evaluate",
    "evaluate_sync",
    "load_baseline",
    "load_cases",
    "parse_expect",
    "tools_called",
]
