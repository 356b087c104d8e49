"""`make demo DEMO_ARGS=--serve`: the deploy bot waits for approval, and the printed inbox and key work."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).parent.parent.parent


def test_the_serve_demo_prints_an_inbox_that_answers_and_a_key_that_lists_the_waiting_thread(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "examples" / "deploy_bot.py"), "--model", "scripted", "--serve"]
    environment = {k: v for k, v in os.environ.items() if k not in ("THREADLOOM_API_KEYS", "THREADLOOM_SECRET")}
    demo = subprocess.Popen(
        [*command, "--port", "0", "--store", f"sqlite:///{tmp_path}/demo.db"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    try:
        assert demo.stdout is not None
        printed: list[str] = []
        while not printed or "Serving until Ctrl-C" not in printed[-1]:
            line = demo.stdout.readline()
            assert line, f"the demo ended before it served: {''.join(printed)}{demo.communicate()[1]}"
            printed.append(line)
        out = "".join(printed)
        [inbox] = re.findall(r"^inbox: +(http://\S+)$", out, re.MULTILINE)
        [key] = re.findall(r"^API key: +(tlk_\S+) ", out, re.MULTILINE)
        [thread_id] = re.findall(r"^thread: +(\S+)$", out, re.MULTILINE)
        assert "The thread waits: approval to run `deploy_backend`" in out

        assert httpx.get(inbox, timeout=30, follow_redirects=True).status_code == 200
        base = inbox.removesuffix("/inbox")
        listed = httpx.get(
            f"{base}/v1/threads", params={"status": "waiting_approval"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert listed.status_code == 200, listed.text
        assert [row["thread_id"] for row in listed.json()["threads"]] == [thread_id]
        assert httpx.get(f"{base}/v1/threads", headers={"Authorization": "Bearer tlk_not_the_key"}).status_code == 401

        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == 0, demo.communicate()[1]
    finally:
        if demo.poll() is None:
            demo.kill()
        demo.communicate()
