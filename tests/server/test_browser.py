"""The inbox and an answer link in a real browser: Debian's chromium, headless, driven by playwright.

A deploy bot is launched over the API; a person signs in to the inbox, opens the thread, changes
the tag and approves; the page follows the thread to `done` through its event stream, with no
reload. Then an agent asks a question, answered from its answer link. Each step is photographed at
laptop and phone size under `$THREADLOOM_ARTIFACTS` (a temporary folder unless set).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from asking import asker
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright
from serving import ADMIN, Serve

from threadloom import Agent, tool
from threadloom.messages import Message
from threadloom.models import ScriptedModel

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAPTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}

gate = threading.Event()
"""Holds the deploy until the test has seen the page after the approval: what follows can only come by the stream."""


@tool(policy="approval")
def deploy(tag: str, environment: str = "production") -> dict[str, str]:
    """Deploy a tagged build.

    Args:
        tag: the git tag to deploy, e.g. v1.2.3
        environment: where to deploy it
    """
    assert gate.wait(60), "the test never let the deploy run"
    return {"deployed": tag, "environment": environment}


def _step(messages: Sequence[Message]) -> str:
    if "<deploy_result>" in messages[-1].content:
        return json.dumps({"intent": "done_for_now", "message": "Deployed and healthy."})
    return json.dumps({"intent": "deploy", "tag": "v1.2.3", "environment": "production"})


def deploy_bot() -> Agent:
    """Asks to deploy v1.2.3 (an approval), then says it is done."""
    return Agent(name="deploy_bot", model=ScriptedModel([_step] * 100), tools=[deploy])


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Headless chromium; missing, it fails the run in CI (THREADLOOM_REQUIRE_POSTGRES=1) and skips it elsewhere."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("THREADLOOM_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def artifacts(tmp_path: Path, store_url: str) -> Path:
    """Where the screenshots go: `$THREADLOOM_ARTIFACTS/browser/<store>`, else the test's temporary folder."""
    root = Path(os.environ["THREADLOOM_ARTIFACTS"]) if os.environ.get("THREADLOOM_ARTIFACTS") else tmp_path
    folder = root / "browser" / store_url.partition(":")[0]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def launch(api: httpx.Client, agent: str, **data: str) -> str:
    """A new thread of `agent`, over the API."""
    launched = api.post("/v1/threads", json={"agent": agent, "event": {"type": "user_input", "data": data}})
    assert launched.status_code == 201, launched.text
    return launched.json()["thread_id"]


def wait(api: httpx.Client, thread_id: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The thread, over the API, once `until` holds for it (the server's worker runs it)."""
    deadline = time.monotonic() + 30
    while not until(thread := api.get(f"/v1/threads/{thread_id}").json()):
        assert time.monotonic() < deadline, f"thread {thread_id} stuck at {thread['status']}"
        time.sleep(0.05)
    return thread


def waiting(api: httpx.Client, thread_id: str) -> dict[str, Any]:
    return wait(api, thread_id, lambda t: t["pending"] is not None)


def shoot(page: Page, folder: Path, name: str) -> None:
    """A full-page screenshot `name.png` (from the top: a sticky header would be drawn where the page was scrolled)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/inbox")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Waiting for you")).to_be_visible()


def test_approve_in_the_inbox_and_answer_from_a_link(serve: Serve, chromium: Browser, artifacts: Path) -> None:
    gate.clear()
    with serve([deploy_bot(), asker()]) as api:
        base = str(api.base_url).rstrip("/")
        laptop = chromium.new_context(viewport=LAPTOP)
        phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
        try:
            desk, pocket = laptop.new_page(), phone.new_page()
            problems: list[str] = []
            for page in (desk, pocket):
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(str(e)))

            desk.goto(f"{base}/inbox")
            shoot(desk, artifacts, "1-sign-in-laptop")
            sign_in(desk, base, ADMIN)
            sign_in(pocket, base, ADMIN)
            shoot(desk, artifacts, "2-empty-inbox-laptop")

            thread_id = launch(api, "deploy_bot", text="deploy the backend to production")
            waiting(api, thread_id)
            question = waiting(api, launch(api, "asker", text="where should v1.2.3 go?", urgency="low"))
            pocket.reload()
            expect(desk.locator(".queue-item")).to_have_count(2, timeout=20_000)  # the list reads itself again
            shoot(desk, artifacts, "3-inbox-laptop")
            shoot(pocket, artifacts, "3-inbox-phone")

            desk.locator(".queue-item", has_text="deploy_bot").click()
            expect(desk.locator("#status")).to_have_text("Waiting for approval")
            expect(desk.locator("#live")).to_have_text("live")
            pocket.goto(f"{base}/inbox/threads/{thread_id}")
            tag = desk.locator('input[name="arg.tag"]')
            expect(tag).to_have_value("v1.2.3")
            tag.fill("v1.2.4")
            shoot(desk, artifacts, "4-thread-waiting-laptop")
            shoot(pocket, artifacts, "4-thread-waiting-phone")

            desk.get_by_role("button", name="Approve and run").click()
            expect(desk.get_by_text("Approved: the call runs next.")).to_be_visible()
            expect(desk.locator("#live")).to_have_text("live")
            assert desk.locator("#status").inner_text() == "Running"  # the deploy is held at the gate
            desk.evaluate("window.sameDocument = true")  # gone if anything reloads the page
            gate.set()
            expect(desk.locator("#status")).to_have_text("Done", timeout=30_000)
            assert desk.evaluate("window.sameDocument === true"), "the page reloaded instead of following the stream"
            expect(desk.locator("#timeline")).to_contain_text("deploy returned")
            expect(desk.locator("#timeline")).to_contain_text("Deployed and healthy.")
            expect(desk.locator("#panel")).to_be_empty()
            expect(desk.locator("#steps .count")).to_have_text("2")  # the new step came with the stream too
            desk.locator("#steps summary").first.click()  # what the model got at its first step
            expect(desk.locator("#steps")).to_contain_text("What is the next step?")
            shoot(desk, artifacts, "5-thread-done-laptop")
            pocket.reload()
            expect(pocket.locator("#status")).to_have_text("Done")
            shoot(pocket, artifacts, "5-thread-done-phone")

            done = wait(api, thread_id, lambda t: t["status"] == "done")
            [call, approval] = [e for e in done["events"] if e["type"] in ("tool_call", "approval")]
            assert approval["data"] == {
                "call_id": call["id"],
                "approved": True,
                "edits": {"tag": "v1.2.4"},
                "by": "key:admin",
            }

            link = urlparse(str(question["pending"]["answer_url"])).path  # the link as the API (and webhooks) give it
            pocket.goto(f"{base}{link}")
            expect(pocket.get_by_role("heading", name="Which environment should get v1.2.3?")).to_be_visible()
            shoot(pocket, artifacts, "6-answer-link-phone")
            desk.goto(f"{base}{link}")
            shoot(desk, artifacts, "6-answer-link-laptop")
            pocket.get_by_role("button", name="staging").click()
            expect(pocket.get_by_text("Thank you: your answer is recorded.")).to_be_visible()
            expect(pocket.locator(".answered")).to_contain_text("by the answer link")
            shoot(pocket, artifacts, "7-answered-phone")
            assert problems == []  # no script error, no failed load (the 409 below is one, on purpose)
            desk.get_by_role("button", name="production").click()  # a second person, on the page they opened before
            expect(desk.locator(".flash.bad")).to_have_text("Not sent: it was answered already (below).")
            shoot(desk, artifacts, "8-answered-already-laptop")
            answered = wait(api, question["thread_id"], lambda t: t["status"] == "done")
            [response] = [e["data"] for e in answered["events"] if e["type"] == "human_response"]
            assert response == {"request_id": question["pending"]["id"], "text": "staging", "by": "answer_link"}
        finally:
            gate.set()
            laptop.close()
            phone.close()
