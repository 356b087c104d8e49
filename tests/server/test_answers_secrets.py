"""A call's secret arguments in the approval forms: shown as [REDACTED], kept when the form is sent unchanged."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence

import pytest
from asking import Side
from serving import ADMIN, Serve
from test_inbox import browser, sign_in

from threadloom import Agent, tool
from threadloom.messages import Message
from threadloom.models import ScriptedModel

logins: list[tuple[str, str, str]] = []
PASSWORD = "Hunter2-the-real-one"
TOKEN = "tok-the-real-api-token"


@tool(policy="approval")
def log_in(user: str, password: str, api_token: str) -> str:
    """Log in to the admin console.

    Args:
        user: who
        password: a secret by its name
        api_token: a secret by its name
    """
    logins.append((user, password, api_token))
    return f"logged in as {user}"


def _step(messages: Sequence[Message]) -> str:
    if "<log_in_result>" in messages[-1].content:
        return json.dumps({"intent": "done_for_now", "message": "In."})
    return json.dumps({"intent": "log_in", "user": "ada", "password": PASSWORD, "api_token": TOKEN})


def agent() -> Agent:
    return Agent(name="admin_bot", model=ScriptedModel([_step] * 10), tools=[log_in])


@pytest.fixture
def side(store_url: str) -> Iterator[Side]:
    runtime = Side(store_url, [agent()])
    yield runtime
    runtime.close()


@pytest.fixture(autouse=True)
def _no_logins() -> None:
    logins.clear()


def _form(page: str) -> dict[str, str]:
    """What a browser sends for the approve form as shown: its csrf token and each argument's value."""
    fields = dict(re.findall(r'name="(csrf|arg\.[a-z_]+)" value="([^"]*)"', page))
    return {**fields, "action": "approve"}


@pytest.mark.parametrize("where", ["answer_link", "inbox"])
def test_secret_arguments_show_redacted_and_an_unchanged_form_keeps_them(serve: Serve, side: Side, where: str) -> None:
    with serve([agent()]) as api, browser(api) as client:
        thread = side.waiting(side.launch("admin_bot", text="log in"))
        assert thread.pending is not None
        if where == "inbox":
            sign_in(client, ADMIN)
            url = f"/inbox/threads/{thread.id}"
            action = f"{url}/requests/{thread.pending.id}"
        else:
            url = action = side.link(thread)
        page = client.get(url).text
        assert PASSWORD not in page and TOKEN not in page
        if where == "inbox":  # the list's line of arguments too
            listed = client.get("/inbox").text
            assert "ada" in listed and PASSWORD not in listed and TOKEN not in listed
        form = _form(page)
        assert form["arg.user"] == "ada" and form["arg.password"] == form["arg.api_token"] == "[REDACTED]"
        sent = client.post(action, data={**form, "arg.api_token": "tok-a-new-one"})
        assert sent.status_code == 303
        side.wait(thread.id, lambda t: t.status == "done")
        assert logins == [("ada", PASSWORD, "tok-a-new-one")]  # kept as it was; the edited one replaced


def test_a_json_approval_that_sends_back_the_arguments_as_shown_keeps_the_secrets(serve: Serve, side: Side) -> None:
    with serve([agent()]) as client:
        link = side.link(side.waiting(side.launch("admin_bot", text="log in")))
        shown = client.get(link, headers={"Accept": "application/json"}).json()["arguments"]
        assert shown == {"user": "ada", "password": "[REDACTED]", "api_token": "[REDACTED]"}
        sent = client.post(link, json={"decision": "approve", "edits": {**shown, "user": "grace"}})
        assert sent.status_code == 200
        side.wait(sent.json()["thread_id"], lambda t: t.status == "done")
        assert logins == [("grace", PASSWORD, TOKEN)]
