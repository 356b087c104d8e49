"""The HTML report: one self-contained page (inline CSS, no scripts, nothing fetched)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ._results import Attempt, CaseReport, ModelSummary

__all__ = ["render_html"]

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #1d2430; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #d8dde6; }
.total { font-size: 1.2em; color: #4a5568; }
table { border-collapse: collapse; width: 100%; margin: .6em 0; }
th, td { border: 1px solid #d8dde6; padding: .35em .6em; text-align: left; vertical-align: top; }
td.rate { white-space: nowrap; }
th { background: #f1f4f9; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #c9252d; font-weight: 600; }
.bar { display: inline-block; height: .7em; background: #1a7f37; border-radius: 2px; margin-right: .4em; }
details { border: 1px solid #d8dde6; border-radius: 4px; margin: .8em 0; padding: .5em .8em; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; white-space: pre-wrap; font-size: 12.5px; }
.role { font-weight: 600; color: #5a3fc0; margin-top: .5em; }
"""


def render_html(title: str, cases: Sequence[CaseReport], models: Sequence[ModelSummary]) -> str:
    """The page for a report's cases and per-model totals."""
    attempts = [a for c in cases for a in c.attempts]
    pass_rate = sum(a.passed for a in attempts) / len(attempts) if attempts else 0.0
    failures = [(c, a) for c in cases for a in c.attempts if not a.passed]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='total'>{_rate(pass_rate)} of {sum(len(c.attempts) for c in cases)} attempts passed",
        f" over {len({c.case for c in cases})} cases.</p>",
        "<h2>Models</h2><table><tr><th>model</th><th>attempts</th><th>pass rate</th><th>tokens in</th>",
        "<th>tokens out</th><th>cost</th><th>latency p50</th><th>latency max</th></tr>",
    ]
    for m in models:
        cost = "&ndash;" if m.cost is None else f"${m.cost:.4f}"
        parts.append(
            f"<tr><td>{escape(m.model)}</td><td class='num'>{m.attempts}</td><td class='rate'>{_rate(m.pass_rate)}</td>"
            f"<td class='num'>{m.input_tokens}</td><td class='num'>{m.output_tokens}</td><td class='num'>{cost}</td>"
            f"<td class='num'>{m.latency_ms_p50:.0f} ms</td><td class='num'>{m.latency_ms_max:.0f} ms</td></tr>"
        )
    parts.append("</table><h2>Cases</h2><table><tr><th>case</th><th>model</th><th>pass rate</th><th>checks</th></tr>")
    for c in cases:
        checks = sorted({r.check for a in c.attempts for r in a.results})
        parts.append(
            f"<tr><td>{escape(c.case)}</td><td>{escape(c.model)}</td><td class='rate'>{_rate(c.pass_rate)}</td>"
            f"<td>{'<br>'.join(escape(check) for check in checks)}</td></tr>"
        )
    parts.append("</table>")
    parts.append(f"<h2>Failures ({len(failures)})</h2>")
    if not failures:
        parts.append("<p class='pass'>Every attempt passed.</p>")
    for number, (case, attempt) in enumerate(failures, 1):
        parts.append(_failure(number, case, attempt))
    parts.append("</body></html>")
    return "".join(parts)


def _rate(rate: float) -> str:
    kind = "pass" if rate == 1 else "fail"
    return f"<span class='bar' style='width:{rate * 60:.0f}px'></span><span class='{kind}'>{rate:.0%}</span>"


def _failure(number: int, case: CaseReport, attempt: Attempt) -> str:
    rows = "".join(
        f"<tr><td class='{'pass' if r.passed else 'fail'}'>{'pass' if r.passed else 'fail'}</td>"
        f"<td>{escape(r.check)}</td><td>{escape(r.detail)}</td></tr>"
        for r in attempt.results
    )
    context = "".join(
        f"<div class='role'>[{escape(str(m.get('role')))}]</div><pre>{escape(str(m.get('content', '')))}</pre>"
        for m in attempt.messages
    )
    error = f"<p class='fail'>Error:</p><pre>{escape(attempt.error)}</pre>" if attempt.error else ""
    checks = f"<table><tr><th></th><th>check</th><th>detail</th></tr>{rows}</table>" if rows else ""
    return (
        f"<details open><summary>{number}. {escape(case.case)} [{escape(case.model)}]</summary>{error}{checks}"
        f"<p><b>The answer it got</b></p><pre>{escape(attempt.answer or '(none)')}</pre>"
        f"<details open><summary>Rendered context ({len(attempt.messages)} messages)</summary>{context}</details>"
        "</details>"
    )
