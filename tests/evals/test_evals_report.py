"""Reports: the terminal table, JSON, the HTML page and the baseline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from threadloom import Agent, Thread, UserError
from threadloom.evals import Case, NextIntent, Report, evaluate_sync, load_baseline
from threadloom.models import ScriptedModel

DEPLOY = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'
DONE = '{"intent": "done_for_now", "message": "<b>done</b> & dusted"}'


def report(outputs: list[str], repeats: int = 1) -> Report:
    agent = Agent(name="bot", model=ScriptedModel(outputs, name="gpt-4.1-mini"))
    cases = [
        Case("finishes", Thread.start("user_input", {"text": "say done"}), [NextIntent("done_for_now")]),
        Case("asks", Thread.start("user_input", {"text": "<ask> me"}), [NextIntent("request_more_information")]),
    ]
    return evaluate_sync(agent, cases, repeats=repeats, concurrency=1, title="bot evals")


def test_the_json_report_holds_cases_attempts_checks_and_contexts() -> None:
    document = json.loads(report([DONE, DONE]).to_json())
    assert document["title"] == "bot evals" and document["pass_rate"] == 0.5
    finishes, asks = document["cases"]
    assert (finishes["case"], finishes["pass_rate"], asks["pass_rate"]) == ("finishes", 1.0, 0.0)
    [attempt] = asks["attempts"]
    assert attempt["results"][0]["check"] == "request_more_information()"
    assert "&lt;ask> me" in attempt["messages"][-1]["content"]  # the context fences a value's markup
    assert document["models"][0]["model"] == "gpt-4.1-mini" and document["models"][0]["attempts"] == 2


def test_the_html_page_is_self_contained_and_shows_each_failure_escaped() -> None:
    page = report([DONE, DONE]).to_html()
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert not re.search(r"(src|href)=", page)  # nothing fetched: one file to keep as an artifact
    assert "Failures (1)" in page and "asks [gpt-4.1-mini]" in page
    assert "&lt;b&gt;done&lt;/b&gt; &amp; dusted" in page  # the answer, escaped
    assert "Rendered context" in page


def test_the_terminal_table_names_models_and_cases() -> None:
    console = Console(record=True, width=200)
    report([DONE, DONE]).print(console)
    text = console.export_text()
    assert "gpt-4.1-mini" in text and "finishes" in text and "50%" in text
    assert "intent: expected" in text


def test_a_baseline_catches_a_drop_in_pass_rate_and_ignores_new_cases(tmp_path: Path) -> None:
    good = report([DONE, DONE, DONE, '{"intent": "request_more_information", "message": "what?"}'], repeats=2)
    assert [c.pass_rate for c in good.cases] == [1.0, 0.5]
    path = tmp_path / "baseline.json"
    good.save_baseline(path)
    baseline = load_baseline(path)
    assert baseline == {"version": 1, "cases": {"finishes": {"gpt-4.1-mini": 1.0}, "asks": {"gpt-4.1-mini": 0.5}}}
    worse = report([DONE, DONE, DONE, DONE], repeats=2)
    [regression] = worse.regressions(baseline)
    assert str(regression) == "asks [gpt-4.1-mini]: pass rate 50% -> 0%"
    assert worse.regressions(baseline, tolerance=0.5) == []
    assert worse.regressions({"cases": {}}) == []


def test_a_file_that_is_not_a_baseline_is_refused(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("[]")
    with pytest.raises(UserError, match="is not a baseline"):
        load_baseline(tmp_path / "b.json")
    with pytest.raises(UserError, match="cannot read baseline"):
        load_baseline(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("cases", "problem"),
    [
        ({"asks": 0.5}, "case 'asks' holds 0.5, not a mapping of model -> pass rate"),
        (
            {"asks": {"gpt-4.1-mini": "high"}},
            "case 'asks', model 'gpt-4.1-mini': 'high' is not a pass rate from 0 to 1",
        ),
        ({"asks": {"gpt-4.1-mini": True}}, "case 'asks', model 'gpt-4.1-mini': True is not a pass rate from 0 to 1"),
        ({"asks": {"gpt-4.1-mini": 50}}, "case 'asks', model 'gpt-4.1-mini': 50 is not a pass rate from 0 to 1"),
    ],
    ids=["case", "text", "bool", "percent"],
)
def test_a_baseline_with_a_bad_rate_is_refused_before_anything_runs(
    tmp_path: Path, cases: dict[str, object], problem: str
) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"version": 1, "cases": cases}))
    with pytest.raises(UserError) as refused:
        load_baseline(path)
    assert str(refused.value) == f"{str(path)!r} is not a baseline: {problem}"
    with pytest.raises(UserError, match="is not a baseline"):  # a mapping given in code is judged alike
        report([DONE, DONE]).regressions({"cases": cases})
