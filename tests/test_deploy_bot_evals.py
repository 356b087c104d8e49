"""The deploy bot's eval suite, offline from its cassette: reports, the baseline gate, the HTML page in chromium;
and one of its cases run live on the embedded local model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from threadloom.evals._cli import app

ROOT = Path(__file__).parent.parent
SUITE = str(ROOT / "examples" / "deploy_bot_evals.py") + ":suite"
LIVE_SUITE = str(ROOT / "examples" / "deploy_bot_evals.py") + ":live_suite"
BASELINE = ROOT / "examples" / "evals" / "deploy_bot.baseline.json"
MODEL = "SmolLM2-135M-Instruct.Q4_1"  # the cassette was recorded from the embedded local model


@pytest.fixture(autouse=True)
def replaying(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THREADLOOM_CASSETTES", raising=False)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["eval", "run", SUITE, "--no-progress", *args])
    return result.exit_code, result.output


def test_the_suite_replays_offline_and_meets_its_baseline(tmp_path: Path) -> None:
    cassette = ROOT / "examples" / "evals" / "deploy_bot.cassette.yaml"
    before = cassette.read_text()
    code, out = run("--baseline", str(BASELINE), "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html"))
    assert code == 0, out
    assert "no regressions against" in out
    report = json.loads((tmp_path / "r.json").read_text())
    rates = {c["case"]: {c["model"]: c["pass_rate"]} for c in report["cases"]}
    assert rates == json.loads(BASELINE.read_text())["cases"]  # SmolLM2's answers, replayed exactly
    failures = sum(1 for c in report["cases"] for a in c["attempts"] if not a["passed"])
    assert (tmp_path / "r.html").read_text().count("<details open>") == 2 * failures  # each with its context
    assert cassette.read_text() == before  # replay writes nothing


def test_a_regression_against_the_baseline_exits_non_zero_and_names_the_cases(tmp_path: Path) -> None:
    baseline = json.loads(BASELINE.read_text())
    baseline["cases"]["production: the newest tag"][MODEL] = 1.0  # a case the replayed answers fail
    baseline["cases"]["file: a rollback asks for the previous tag"][MODEL] = 0.5
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline))
    code, out = run("--baseline", str(path))
    assert code == 1
    assert "2 cases regressed" in out
    assert f"production: the newest tag [{MODEL}]: pass rate 100% -> 0%" in out
    assert f"file: a rollback asks for the previous tag [{MODEL}]: pass rate 50% -> 0%" in out


def test_the_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = tmp_path / "report.html"
    assert run("--html", str(page))[0] == 0
    shot = tmp_path / "report.png"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1600"]
    done = subprocess.run(
        [*command, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000  # not a blank page
    dom = subprocess.run(
        [*command, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=False
    )
    assert "Failures (5)" in dom.stdout and f"production: the newest tag [{MODEL}]" in dom.stdout
    artifacts = os.environ.get("THREADLOOM_ARTIFACTS")
    if artifacts:  # CI keeps the screenshot
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "deploy-bot-eval-report.png")


def test_a_case_of_the_suite_runs_live_on_the_embedded_model_through_the_command(tmp_path: Path) -> None:
    # Not the cassette: SmolLM2 answers now, in the command's own process (llama.cpp, no network, no
    # key). What the tiny model picks is not asserted; that the run completes and reports it is.
    cassette = ROOT / "examples" / "evals" / "deploy_bot.cassette.yaml"
    before = cassette.read_text()
    reports = {"--json": tmp_path / "live.json", "--html": tmp_path / "live.html"}
    environment = {k: v for k, v in os.environ.items() if k != "THREADLOOM_CASSETTES"}
    command = [sys.executable, "-m", "threadloom.cli", "eval", "run", LIVE_SUITE, "--no-progress"]
    done = subprocess.run(
        [*command, *(f"{option}={path}" for option, path in reports.items())],
        cwd=ROOT,
        env={**environment, "DEPLOY_BOT_EVAL_MODEL": "local", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "deploy bot evals, live" in done.stdout and MODEL in done.stdout
    report = json.loads(reports["--json"].read_text())
    (case,) = report["cases"]
    (attempt,) = case["attempts"]
    assert (case["case"], case["model"]) == ("production: the newest tag", MODEL)
    assert attempt["error"] is None, attempt  # the model answered
    # The grammar holds the model to the intents offered at this step, so its answer is one of them.
    assert json.loads(attempt["answer"])["intent"] in ("deploy_backend", "request_more_information")
    assert report["models"][0]["input_tokens"] > 0 and report["models"][0]["output_tokens"] > 0
    page = reports["--html"].read_text()
    assert page.startswith("<!doctype html>") and "production: the newest tag" in page
    assert cassette.read_text() == before  # a live run records nothing
