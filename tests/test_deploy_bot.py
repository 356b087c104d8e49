"""The demo with its scripted model, end to end: without a terminal (as CI runs it), both ways, across three processes.

The default run, with the real local model, is `make demo` in CI; tests/models/test_local.py runs the bot on it.
"""

import asyncio
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from threadloom import Thread
from threadloom.models import ScriptedModel
from workers.started import wait_started

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "deploy_bot.py"
CLI = [sys.executable, "-m", "threadloom.cli"]


def run(*args: str, code: int = 0) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--model", "scripted", *args],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert done.returncode == code, done.stderr
    return done.stdout + done.stderr


def final_thread(out: str) -> str:
    """The last event line printed under "Final thread" (before the usage totals)."""
    return out.split("=== Final thread")[1].split("=== Usage")[0].rstrip()


@pytest.mark.parametrize("flags", [(), ("--approve",)])
def test_approving_deploys_and_finishes(flags: tuple[str, ...], tmp_path: Path) -> None:
    out = run("--store", f"sqlite:///{tmp_path}/t.db", *flags)
    assert "<list_git_tags_result>" in out  # prefetched before the model's first call
    assert "Stopped before running: approval to run `deploy_backend` (status 'waiting_approval')" in out
    assert "threadloom threads approve th_" in out
    assert "'status': 'success', 'tag': 'v1.2.3', 'environment': 'production'" in out
    assert '  model -> deploy_backend {"tag": "v1.2.3", "environment": "production"}' in out
    assert '  model -> done_for_now {"message": "Deployed v1.2.3 to production."}\n' in out  # no usage record
    assert final_thread(out).endswith("done_for_now  {'message': 'Deployed v1.2.3 to production.'}")
    assert out.rstrip().endswith("scripted: 2 model calls, 0 tokens in, 0 tokens out")  # from thread.usage


def test_the_readme_quotes_the_approve_command_the_demo_prints(tmp_path: Path) -> None:
    out = run("--store", f"sqlite:///{tmp_path}/t.db")
    readme = " ".join((ROOT / "README.md").read_text().split())
    quoted = re.search(r"the printed `([^`]*threads approve) TH_ID([^`]*)` command", readme)
    assert quoted is not None
    printed = re.search(r"^  (\S.*threads approve) th_\w+( --store .*)$", out, re.M)
    assert printed is not None and printed[1] == quoted[1]
    assert printed[2] == quoted[2].replace("sqlite:///threadloom.db", f"sqlite:///{tmp_path}/t.db")


def test_rejecting_sends_the_feedback_to_the_model_and_nothing_runs(tmp_path: Path) -> None:
    out = run("--store", f"sqlite:///{tmp_path}/t.db", "--reject", "use staging first")
    assert "'approved': False, 'feedback': 'use staging first'" in out
    assert "'status': 'success'" not in out
    assert final_thread(out).endswith("the deploy was rejected.'}")


def test_an_unknown_model_is_one_clear_line() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE), "--model", "nope"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --model 'nope': use local, scripted, openai:NAME or anthropic:NAME"


def example() -> Any:
    spec = importlib.util.spec_from_file_location("deploy_bot_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEPLOY = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'
DONE = '{"intent": "done_for_now", "message": "Deployed."}'


def test_the_code_names_the_newest_tag_and_narrows_each_step() -> None:
    model = ScriptedModel([DEPLOY, DEPLOY, DONE])
    agent = example().build_agent(model)
    start = Thread.start("slack_message", {"text": "deploy the backend to production"})
    thread = asyncio.run(agent.run(start))
    first = model.requests[0]
    assert first.intent_names == ("deploy_backend", "request_more_information")
    assert "<list_git_tags_result>\nnewest: v1.2.3\n" in first.messages[-1].content
    assert thread.pending is not None and thread.status == "waiting_approval"
    thread = asyncio.run(agent.run(thread.approve(thread.pending.id)))
    # After the deploy ran only finishing or asking is offered: a second deploy is an error, never run.
    assert [r.intent_names for r in model.requests[1:]] == [("done_for_now", "request_more_information")] * 2
    assert [e.type for e in thread.events][-4:] == ["tool_started", "tool_response", "error", "done_for_now"]
    assert thread.status == "done"


def test_after_a_rejection_the_model_may_deploy_again_or_finish() -> None:
    model = ScriptedModel([DEPLOY, DONE])
    agent = example().build_agent(model)
    thread = asyncio.run(agent.run(Thread.start("slack_message", {"text": "deploy the backend"})))
    assert thread.pending is not None
    thread = asyncio.run(agent.run(thread.reject(thread.pending.id, "not today")))
    assert model.requests[1].intent_names == ("deploy_backend", "done_for_now", "request_more_information")
    assert thread.status == "done" and "tool_response" not in [e.type for e in thread.events][4:]


def cli(*args: str, store: str) -> str:
    done = subprocess.run(
        [*CLI, *args, "--store", store], capture_output=True, text=True, check=False, cwd=ROOT, env=_env()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]), "COLUMNS": "200"}


def test_launched_here_approved_from_the_cli_finished_by_a_worker(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/t.db"
    launch = (
        "import asyncio, sys\n"
        "from threadloom import Event, Runtime\n"
        "from examples.deploy_bot import build_agent\n"
        "async def main():\n"
        f"    runtime = Runtime(store={store!r}, agents=[build_agent()])\n"
        "    tid = await runtime.launch('deploy_bot', Event('slack_message', {'text': 'deploy the backend'}))\n"
        "    await runtime.run_until_idle()\n"
        "    print(tid)\n"
        "    await runtime.aclose()\n"
        "asyncio.run(main())\n"
    )
    first = subprocess.run([sys.executable, "-c", launch], capture_output=True, text=True, cwd=ROOT, env=_env())
    assert first.returncode == 0, first.stderr
    thread_id = first.stdout.strip()

    listing = cli("threads", "ls", "--status", "waiting_approval", store=store)
    assert thread_id in listing
    assert "is waiting_approval: approval to run `deploy_backend`" in cli("threads", "show", thread_id, store=store)
    rendered = cli("threads", "render", thread_id, "--agents", "examples.deploy_bot:build_agent", store=store)
    assert "[system]" in rendered and "<list_git_tags_result>" in rendered
    assert f"thread {thread_id} is ready" in cli("threads", "approve", thread_id, store=store)

    worker = subprocess.Popen(
        [*CLI, "worker", "--agents", "examples.deploy_bot:build_agent", "--store", store],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_started(worker, "worker on")
        for _ in range(300):
            if f"thread {thread_id} is done" in cli("threads", "show", thread_id, store=store):
                break
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    shown = cli("threads", "show", thread_id, store=store)
    assert f"thread {thread_id} is done" in shown
    assert '{"message": "Deployed v1.2.3 to production."' in shown  # then the call's usage record
    assert worker.returncode == 0, out + err


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/t.db"
    done = subprocess.run(
        [*CLI, "threads", "show", "th_nope", "--store", store], capture_output=True, text=True, env=_env()
    )
    assert done.returncode == 1 and done.stdout == ""  # errors go to stderr; a store that is not there is refused
    assert (
        done.stderr.strip()
        == f"error: no SQLite store at {tmp_path}/t.db ({store}); pass --store or set THREADLOOM_STORE"
    )
