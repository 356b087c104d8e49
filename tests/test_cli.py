"""The `threadloom threads` commands on a real SQLite file: decide, answer, fork, list, with idempotency keys."""

import asyncio
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from threadloom import Agent, Event, Runtime, Thread
from threadloom.cli import app
from threadloom.models import ScriptedModel

WORKERS = Path(__file__).parent / "workers"
DEPLOY = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'
ASK = '{"intent": "request_human_input", "question": "Which environment?"}'


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/threads.db"
    monkeypatch.setenv("THREADLOOM_STORE", url)
    monkeypatch.setenv("COLUMNS", "200")
    if str(WORKERS) not in sys.path:
        sys.path.insert(0, str(WORKERS))
    return url


def threadloom(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _launch(url: str, *outputs: str) -> Thread:
    from deploy_agent import deploy_backend  # pyright: ignore[reportMissingImports, reportUnknownVariableType]

    async def main() -> Thread:
        agent = Agent(name="deploy_bot", model=ScriptedModel(list(outputs)), tools=[deploy_backend])  # pyright: ignore[reportUnknownArgumentType]
        async with Runtime(store=url, agents=[agent]) as runtime:
            thread_id = await runtime.launch("deploy_bot", Event("slack_message", {"text": "deploy"}))
            await runtime.run_until_idle()
            return await runtime.get(thread_id)

    return asyncio.run(main())


def _get(url: str, thread_id: str) -> Thread:
    async def main() -> Thread:
        async with Runtime(store=url) as runtime:
            return await runtime.get(thread_id)

    return asyncio.run(main())


def test_approve_with_edits_and_a_key_decides_once(url: str) -> None:
    thread = _launch(url, DEPLOY)
    assert thread.status == "waiting_approval"
    out = threadloom("threads", "approve", thread.id, "--edit", "environment=staging", "--key", "click-1")
    assert f"thread {thread.id} is ready" in out
    assert f"thread {thread.id} is ready" in threadloom("threads", "approve", thread.id, "--key", "click-1")
    approved = _get(url, thread.id)
    [approval] = [e for e in approved.events if e.type == "approval"]
    assert approval.data == {"call_id": thread.events[1].id, "approved": True, "edits": {"environment": "staging"}}


def test_reject_sends_feedback(url: str) -> None:
    thread = _launch(url, DEPLOY)
    assert "is ready" in threadloom("threads", "reject", thread.id, "--feedback", "use staging first")
    assert _get(url, thread.id).events[-1].data == {
        "call_id": thread.events[1].id,
        "approved": False,
        "feedback": "use staging first",
    }


def test_respond_answers_the_pending_request(url: str) -> None:
    thread = _launch(url, ASK)
    assert thread.status == "waiting_human"
    assert "is ready" in threadloom("threads", "respond", thread.id, "staging", "--key", "answer-1")
    assert "is ready" in threadloom("threads", "respond", thread.id, "staging", "--key", "answer-1")
    assert [e.type for e in _get(url, thread.id).events].count("human_response") == 1


def test_fork_and_list_by_status_and_agent(url: str) -> None:
    thread = _launch(url, DEPLOY)
    fork_id = threadloom("threads", "fork", thread.id, "--at", thread.events[0].id).strip()
    assert _get(url, fork_id).metadata["forked_from"] == thread.id
    ready = threadloom("threads", "ls", "--status", "ready", "--agent", "deploy_bot")
    assert fork_id in ready and thread.id not in ready
    assert threadloom("threads", "ls", "--agent", "nobody").count("th_") == 0
    assert threadloom("threads", "ls", "--updated-after", "2000-01-01T00:00:00").count("th_") == 2
    assert threadloom("threads", "ls", "--updated-after", "2999-01-01T00:00:00+00:00").count("th_") == 0


def test_mistakes_are_one_line(url: str) -> None:
    thread = _launch(url, DEPLOY)
    answered = CliRunner().invoke(app, ["threads", "respond", thread.id, "yes"])
    assert answered.exit_code == 1
    assert answered.output.startswith(f"error: cannot respond to {thread.events[1].id!r} in thread {thread.id!r}")
    assert answered.output.count("\n") == 1  # one line, no traceback
    assert CliRunner().invoke(app, ["threads", "ls", "--status", "sleepy"]).exit_code == 2


def test_worker_needs_importable_agents(url: str) -> None:
    result = CliRunner().invoke(app, ["worker", "--agents", "no_such_module:agent"])
    assert result.exit_code == 2 and "cannot import 'no_such_module:agent'" in result.output


def test_the_worker_never_prints_the_store_password() -> None:
    from threadloom.cli import _shown  # pyright: ignore[reportPrivateUsage]

    assert _shown("postgresql://app:s3cret@db/app?sslmode=require") == "postgresql://app:***@db/app?sslmode=require"
    assert _shown("sqlite:///threadloom.db") == "sqlite:///threadloom.db"


def test_a_worker_whose_store_cannot_open_says_so_in_one_line(url: str, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/no-such-dir/threads.db"
    result = CliRunner().invoke(app, ["worker", "--store", store, "--agents", "deploy_agent:agent"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("error: cannot open SQLite store")
