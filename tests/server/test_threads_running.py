"""Outside events while a worker runs the thread: after the running step, never lost, never inside it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from bots import Gate, launch, wait_for
from serving import ADMIN, Serve


def test_an_event_sent_while_a_tool_runs_lands_after_its_result(serve: Serve) -> None:
    gate = Gate()
    with serve([gate.agent()]) as client:
        thread_id = launch(client, "slow")
        assert gate.started.wait(30)  # the worker saved `tool_started` and runs the tool
        headers = {"Authorization": f"Bearer {ADMIN}"}
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=client.base_url, headers=headers) as other:
            body = {"type": "slack_message", "data": {"text": "any news?"}}
            posting = pool.submit(other.post, f"/v1/threads/{thread_id}/events", json=body, timeout=60)
            time.sleep(0.3)  # a margin for the request to reach the server (the test holds however long it takes)
            assert not posting.done()  # it waits for the step
            assert [e["type"] for e in wait_for(client, thread_id, "ready")["events"]] == [
                "user_input", "tool_call", "tool_started"
            ]  # fmt: skip
            gate.opened.set()
            answer = posting.result(60)
        assert answer.status_code == 201 and answer.json()["replayed"] is False
        thread = wait_for(client, thread_id, "done")
        types = [e["type"] for e in thread["events"]]
        assert types[:4] == ["user_input", "tool_call", "tool_started", "tool_response"]
        assert types.count("slack_message") == 1 and types[-1] == "done_for_now"
