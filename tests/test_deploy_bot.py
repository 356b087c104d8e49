"""The demo runs end to end, both ways, without a terminal (as CI runs it)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parent.parent / "examples" / "deploy_bot.py"


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("args", [(), ("--approve",)])
def test_approving_deploys_and_finishes(args: tuple[str, ...]) -> None:
    out = run(*args)
    assert "<list_git_tags_result>" in out  # prefetched before the model's first call
    assert "Stopped before running: approval to run `deploy_backend` (status 'waiting_approval')" in out
    assert "'status': 'success', 'tag': 'v1.2.3', 'environment': 'production'" in out
    assert out.rstrip().endswith("done_for_now  {'message': 'Deployed v1.2.3 to production.'}")


def test_rejecting_sends_the_feedback_to_the_model_and_nothing_runs() -> None:
    out = run("--reject", "use staging first")
    assert "'approved': False, 'feedback': 'use staging first'" in out
    assert "'status': 'success'" not in out
    assert out.rstrip().endswith("the deploy was rejected.'}")
