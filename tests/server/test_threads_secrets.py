"""Secrets in what the API shows: a thread read, its stream and the webhook bodies show `[REDACTED]`, as the pages do."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
from bots import launch, wait_for
from pydantic import SecretStr
from serving import ADMIN, KEYS, READER, SECRET, Serve
from test_inbox import sign_in, sse_messages
from test_stream import read

from threadloom import Agent, Event, Runtime, tool
from threadloom.context import Message
from threadloom.models import ScriptedModel
from threadloom.server import KeyRing, ServerConfig, parse_keys
from threadloom.server._status_changes import body, changes

PIN = "4321-real-pin"
TOKEN = "tok-real-123456"
META = "sk-meta-secret-99"


@tool(policy="approval")
def connect(host: str, pin: SecretStr, api_token: str) -> str:
    """Connect to a database.

    Args:
        host: where
        pin: a secret by its type
        api_token: a secret by its name
    """
    return f"connected to {host}"


def _connect_step(messages: Sequence[Message]) -> str:
    if "<connect_result>" in messages[-1].content:
        return json.dumps({"intent": "done_for_now", "message": "Connected."})
    return json.dumps({"intent": "connect", "host": "db1", "pin": PIN, "api_token": TOKEN})


def connector() -> Agent:
    """Asks to connect with a pin (a SecretStr parameter) and an `api_token` (a secret by its name)."""
    return Agent(name="connector", model=ScriptedModel([_connect_step] * 100), tools=[connect])


# The launch event quotes the token in free text: a secret the tool call holds, hidden wherever else it appears.
LAUNCH = {
    "agent": "connector",
    "event": {"type": "user_input", "data": f"connect with token {TOKEN}"},
    "metadata": {"api_key": META, "team": "ops"},
}


def _no_secret_in(text: str) -> None:
    for secret in (PIN, TOKEN, META):
        assert secret not in text, secret


def _redacted_call(data: dict[str, Any]) -> None:
    """A `tool_call`'s data as the API shows it: secrets hidden, the rest and the model record as they are."""
    assert data["arguments"] == {"host": "db1", "pin": "[REDACTED]", "api_token": "[REDACTED]"}
    # threadloom's bookkeeping is not mangled: `*_tokens` look like secret keys, but are counts.
    assert isinstance(data["model"]["input_tokens"], int) and isinstance(data["model"]["output_tokens"], int)


def test_a_thread_read_shows_secrets_as_redacted_to_any_key(serve: Serve) -> None:
    with serve([connector()]) as client:
        thread_id = client.post("/v1/threads", json=LAUNCH).json()["thread_id"]
        wait_for(client, thread_id, "waiting_approval")
        for key in (READER, None):  # a read-only key, and the admin's (which may approve)
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            answer = client.get(f"/v1/threads/{thread_id}", headers=headers)
            _no_secret_in(answer.text)
            thread = answer.json()
            assert thread["metadata"] == {"api_key": "[REDACTED]", "team": "ops", "agent": "connector"}
            assert thread["events"][0]["data"] == "connect with token [REDACTED]"
            (call,) = [e for e in thread["events"] if e["type"] == "tool_call"]
            _redacted_call(call["data"])
            _redacted_call(thread["pending"]["data"])
            assert thread["pending"]["id"] == call["id"]


def test_the_stream_shows_secrets_as_redacted(serve: Serve) -> None:
    with serve([connector()]) as client:
        thread_id = client.post("/v1/threads", json=LAUNCH).json()["thread_id"]
        wait_for(client, thread_id, "waiting_approval")
        sent: list[dict[str, Any]] = []
        with client.stream(
            "GET", f"/v1/threads/{thread_id}/stream", headers={"Authorization": f"Bearer {READER}"}
        ) as stream:
            for event in read(stream.iter_lines()):
                sent.append(event.data)
                if event.data["type"] == "tool_call":
                    break
        _no_secret_in(json.dumps(sent))
        assert sent[0]["data"] == "connect with token [REDACTED]"
        _redacted_call(sent[-1]["data"])


def test_a_webhook_body_shows_pending_secrets_as_redacted() -> None:
    with Runtime(store="memory://", agents=[connector()]) as runtime:
        thread_id = runtime.launch_sync("connector", Event("user_input", f"connect with token {TOKEN}"))
        runtime.run_until_idle_sync()
        thread = runtime.get_sync(thread_id)
        config = ServerConfig(runtime=runtime, keys=KeyRing(parse_keys(KEYS)), secret=SECRET)
        (waiting,) = [c for c in changes(thread) if c.status == "waiting_approval"]
        text = body(config, thread, waiting)
    _no_secret_in(text)
    _redacted_call(json.loads(text)["pending"]["data"])


LATER = "tok-later-654321"


@tool
def log_in(api_token: str) -> str:
    """Log in.

    Args:
        api_token: a secret by its name
    """
    return "logged in"


def _log_in_step(messages: Sequence[Message]) -> str:
    context = messages[-1].content
    if "<log_in_result>" in context:
        return json.dumps({"intent": "done_for_now", "message": f"Logged in with {LATER}."})
    if "<human_response>" in context:
        return json.dumps({"intent": "log_in", "api_token": LATER})
    return json.dumps({"intent": "request_human_input", "question": "May I log in?"})


def logger_in() -> Agent:
    """Asks, then logs in with a token (a secret by its name) that its last message quotes."""
    return Agent(name="logger_in", model=ScriptedModel([_log_in_step] * 100), tools=[log_in])


def test_a_secret_first_seen_after_a_stream_began_is_hidden_in_later_events(serve: Serve) -> None:
    with serve([logger_in()]) as client:
        launched = client.post(
            "/v1/threads", json={"agent": "logger_in", "event": {"type": "user_input", "data": "go"}}
        )
        thread = wait_for(client, launched.json()["thread_id"], "waiting_human")
        url = f"/v1/threads/{thread['thread_id']}/responses/{thread['pending']['id']}"
        pages: list[str] = []
        sent: list[dict[str, Any]] = []
        with httpx.Client(base_url=client.base_url, timeout=30) as browser:
            sign_in(browser, ADMIN)
            with (
                browser.stream("GET", f"/inbox/threads/{thread['thread_id']}/stream") as page,
                client.stream("GET", f"/v1/threads/{thread['thread_id']}/stream") as api,
            ):
                messages, events = sse_messages(page), read(api.iter_lines())
                assert client.post(url, json={"text": "yes"}).status_code == 200
                for event in events:
                    sent.append(event.data)
                    if event.event == "end":
                        break
                for message in messages:
                    pages.append(message.get("data", ""))
                    if message["event"] == "end":
                        break
        assert LATER not in json.dumps(sent) and "Logged in with [REDACTED]." in json.dumps(sent)
        assert LATER not in "".join(pages) and "Logged in with [REDACTED]." in "".join(pages)


KEY = "sk-the-real-key-777"
DSN = "postgresql://ada:the-real-password@db/app"
calls: list[tuple[str, str, str]] = []


@tool(policy="approval")
def call_api(url: str, api_key: str, dsn: str) -> str:
    """Call an API, and save to a database.

    Args:
        url: where
        api_key: a secret by its name
        dsn: a URL whose password is a secret
    """
    calls.append((url, api_key, dsn))
    return "called"


def _call_api_step(messages: Sequence[Message]) -> str:
    if "<call_api_result>" in messages[-1].content:
        return json.dumps({"intent": "done_for_now", "message": "Called."})
    return json.dumps({"intent": "call_api", "url": "https://api.example", "api_key": KEY, "dsn": DSN})


def caller() -> Agent:
    """Asks to call an API with a key (a secret by its name) and a DSN with a password in it."""
    return Agent(name="caller", model=ScriptedModel([_call_api_step] * 100), tools=[call_api])


def test_an_approval_that_sends_back_the_arguments_as_read_keeps_the_secrets(serve: Serve) -> None:
    calls.clear()
    with serve([caller()]) as client:
        thread = wait_for(client, launch(client, "caller"), "waiting_approval")
        shown = thread["pending"]["data"]["arguments"]
        assert shown == {
            "url": "https://api.example",
            "api_key": "[REDACTED]",
            "dsn": DSN.replace("the-real-password", "[REDACTED]"),
        }
        url = f"/v1/threads/{thread['thread_id']}/approvals/{thread['pending']['id']}"
        edits = {**shown, "url": "https://api2.example"}
        answers = [
            client.post(url, json={"decision": "approve", "edits": edits}, headers={"Idempotency-Key": "k"})
            for _ in range(2)
        ]
        assert [a.status_code for a in answers] == [200, 200]  # a repeat is the same request
        wait_for(client, thread["thread_id"], "done")
        assert calls == [("https://api2.example", KEY, DSN)]  # as stored, not the string [REDACTED]


def test_an_approval_that_gives_a_secret_a_new_value_runs_with_it(serve: Serve) -> None:
    calls.clear()
    with serve([caller()]) as client:
        thread = wait_for(client, launch(client, "caller"), "waiting_approval")
        url = f"/v1/threads/{thread['thread_id']}/approvals/{thread['pending']['id']}"
        edits = {"api_key": "sk-a-new-key-888", "dsn": "postgresql://ada:[REDACTED]@db/other"}
        assert client.post(url, json={"decision": "approve", "edits": edits}).status_code == 200
        wait_for(client, thread["thread_id"], "done")
        assert calls == [("https://api.example", "sk-a-new-key-888", "postgresql://ada:[REDACTED]@db/other")]
