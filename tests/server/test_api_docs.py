"""Every curl example of docs/api.md, run with real curl against a real server: each answers the status it documents."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import httpx
from bots import asker, deploy_bot, launch, wait_for
from serving import ADMIN, READER, Serve

from threadloom.server import InboundHook, new_webhook_secret

DOC = Path(__file__).parents[2] / "docs" / "api.md"
HOOK_SECRET = new_webhook_secret()
# A ```bash block, then (after a blank line) the status it documents: "`201 Created`: ...".
EXAMPLE = re.compile(r"```bash\n(?P<script>.*?)```\n\n`(?P<status>\d{3})[^`]*`", re.DOTALL)
# Each example's curl writes its body to a file and prints only the status.
WRAPPER = 'curl() { command curl -sS -o "$BODY" -w "%{http_code}" --max-time 60 "$@"; }\n'


def examples() -> list[tuple[str, int]]:
    text = DOC.read_text()
    found = [(m["script"], int(m["status"])) for m in EXAMPLE.finditer(text)]
    assert len(found) == text.count("```bash"), "every bash block of docs/api.md documents its status"
    return found


def test_every_endpoint_has_an_example() -> None:
    scripts = "\n".join(script for script, _ in examples())
    for path in (
        '/v1/threads"',
        '/v1/threads/$THREAD_ID"',
        "/v1/threads?",
        "/events",
        "/approvals/$CALL_ID",
        "/responses/$REQUEST_ID",
        "/stream",
        "/context",
        "/fork",
        "/cancel",
        "/healthz",
        "/metrics",
    ):
        assert path in scripts, path


def test_the_examples_answer_what_the_doc_says(serve: Serve, tmp_path: Path) -> None:
    hooks = {"github": InboundHook("github", HOOK_SECRET, "deploy_bot", event_type="github_push")}  # Webhooks
    with serve([deploy_bot(), asker()], hooks=hooks) as client:
        asked = wait_for(client, launch(client, "asker"), "waiting_human")
        linked = wait_for(client, launch(client), "waiting_approval")  # answered through its answer link
        cancelled = wait_for(client, launch(client), "waiting_approval")
        env = {
            **os.environ,
            "THREADLOOM_URL": str(client.base_url).rstrip("/"),
            "THREADLOOM_KEY": ADMIN,
            "READ_KEY": READER,
            "ASKED_ID": asked["thread_id"],
            "REQUEST_ID": asked["pending"]["id"],
            "ANSWER_LINK": str(client.base_url).rstrip("/") + urlparse(str(linked["pending"]["answer_url"])).path,
            "CANCEL_ID": cancelled["thread_id"],
            "GITHUB_HOOK_SECRET": HOOK_SECRET,
            "BODY": str(tmp_path / "body"),
        }
        for script, status in examples():
            if "THREAD_ID" in env:
                refresh(client, env)
            done = subprocess.run(
                ["bash", "-c", WRAPPER + script], env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert done.returncode == 0, done.stderr
            body = Path(env["BODY"]).read_text()
            assert int(done.stdout) == status, f"{script}\n-> {done.stdout}: {body}"
            if "THREAD_ID" not in env and status == 201:
                env["THREAD_ID"] = json.loads(body)["thread_id"]  # the first launch is the doc's thread


def refresh(client: httpx.Client, env: dict[str, str]) -> None:
    """The doc's placeholders for its thread as it is now, once the worker has taken its step."""
    thread = wait_for(client, env["THREAD_ID"], "waiting_approval", "waiting_human", "sleeping", "done", "failed")
    env["EVENT_ID"] = thread["events"][0]["id"]
    if thread["pending"] is not None:
        env["CALL_ID"] = thread["pending"]["id"]  # kept once decided: the 409 example decides it again
