"""`POST /v1/hooks/{name}` through a real server: signed payloads launch or resume threads, once; anything else appends nothing."""

from __future__ import annotations

import json
from collections.abc import Generator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving import Serve
from standardwebhooks import Webhook

from threadloom import Agent, Event, Runtime
from threadloom.models import ScriptedModel
from threadloom.server import InboundHook, new_webhook_secret, sign
from threadloom.thread import Thread

SECRET = new_webhook_secret()
HOOKS = {"orders": InboundHook("orders", SECRET, "orders_bot", event_type="order_placed")}


def bot() -> Agent:
    return Agent(name="orders_bot", model=ScriptedModel(['{"intent": "done_for_now", "message": "ok"}'] * 100))


@pytest.fixture
def client(serve: Serve) -> Generator[httpx.Client]:
    """A server with the `orders` hook (no worker: threads stay as the hook left them), called without an API key."""
    with serve([bot()], hooks=HOOKS, worker=False, max_body_bytes=10_000) as admin:
        with httpx.Client(base_url=admin.base_url, timeout=30) as anonymous:
            yield anonymous


def post(
    client: httpx.Client, body: bytes, *, msg_id: str = "msg_1", secret: str = SECRET, at: datetime | None = None
) -> httpx.Response:
    headers = {**sign(secret, body, msg_id=msg_id, at=at), "content-type": "application/json"}
    return client.post("/v1/hooks/orders", content=body, headers=headers)


def threads(store_url: str) -> list[Thread]:
    with Runtime(store=store_url) as runtime:
        return [runtime.get_sync(s.thread_id) for s in runtime.list_sync(limit=1000)]


def test_a_signed_payload_launches_a_thread_of_the_hooks_agent(client: httpx.Client, store_url: str) -> None:
    answer = post(client, b'{"order": "A-1001", "total": 45.99}')
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body == {"thread_id": body["thread_id"], "status": "ready", "action": "launched"}
    (thread,) = threads(store_url)
    assert thread.id == body["thread_id"] and thread.metadata["agent"] == "orders_bot"
    assert [(e.type, e.data) for e in thread.events] == [("order_placed", {"order": "A-1001", "total": 45.99})]


def test_a_retried_delivery_launches_nothing_new(client: httpx.Client, store_url: str) -> None:
    first = post(client, b'{"order": "A-1"}', msg_id="msg_retry")
    again = post(client, b'{"order": "A-1"}', msg_id="msg_retry", at=datetime.now(UTC) + timedelta(seconds=30))
    assert first.status_code == again.status_code == 202
    assert again.json()["thread_id"] == first.json()["thread_id"]
    other = post(client, b'{"order": "A-1"}', msg_id="msg_other")
    assert other.json()["thread_id"] != first.json()["thread_id"]
    assert len(threads(store_url)) == 2
    reused = post(client, b'{"order": "B-2"}', msg_id="msg_retry")  # the same id for another payload
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert len(threads(store_url)) == 2


def test_a_payload_with_a_thread_id_is_sent_to_that_thread_once(client: httpx.Client, store_url: str) -> None:
    with Runtime(store=store_url) as runtime:
        question = Event("request_human_input", {"question": "Which warehouse?"})
        thread_id = runtime.launch_sync("orders_bot", Event("order_placed", {"order": "A-7"}))
        runtime.send_event_sync(thread_id, question)
        assert runtime.get_sync(thread_id).status == "waiting_human"
    payload = json.dumps({"thread_id": thread_id, "warehouse": "north"}).encode()
    answer = post(client, payload, msg_id="msg_reply")
    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "thread_id": thread_id,
        "status": "ready",
        "action": "sent",
    }  # the outside event resumes it
    assert post(client, payload, msg_id="msg_reply").json() == answer.json()
    (thread,) = threads(store_url)
    assert [e.type for e in thread.events] == ["order_placed", "request_human_input", "order_placed"]
    assert thread.events[-1].data == {"thread_id": thread_id, "warehouse": "north"}


def test_forged_unsigned_changed_or_stale_is_401_and_appends_nothing(client: httpx.Client, store_url: str) -> None:
    body = b'{"order": "A-1"}'
    good = sign(SECRET, body, msg_id="msg_1")
    cases = {
        "unsigned": client.post("/v1/hooks/orders", content=body),
        "another secret": post(client, body, secret=new_webhook_secret()),
        "changed": client.post("/v1/hooks/orders", content=b'{"order": "A-2"}', headers=good),
        "stale": post(client, body, at=datetime.now(UTC) - timedelta(minutes=6)),
        "future": post(client, body, at=datetime.now(UTC) + timedelta(minutes=6)),
        "garbage": client.post("/v1/hooks/orders", content=body, headers={**good, "webhook-signature": "v1,???"}),
    }
    for case, answer in cases.items():
        assert answer.status_code == 401, case
        assert answer.json()["error"]["code"] == "bad_signature", case
    assert "missing" in cases["unsigned"].json()["error"]["message"]
    assert "5 minutes" in cases["stale"].json()["error"]["message"]
    assert threads(store_url) == []


def test_an_unknown_hook_is_404(client: httpx.Client, store_url: str) -> None:
    body = b"{}"
    answer = client.post("/v1/hooks/nowhere", content=body, headers=sign(SECRET, body, msg_id="m"))
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "hook_not_found"
    assert threads(store_url) == []


def test_bad_payloads_are_422_and_an_unknown_thread_404(client: httpx.Client, store_url: str) -> None:
    for body in (b"not json", b'{"thread_id": 7}', b'{"n": NaN}', b"[" * 5000 + b"]" * 5000):
        answer = post(client, body)
        assert answer.status_code == 422, (body[:20], answer.text)
        assert answer.json()["error"]["code"] == "invalid_request"
    large = post(client, b'{"n": ' + b"9" * 5000 + b"}")  # valid JSON, a number too large to read
    assert large.status_code == 422 and "number" in large.json()["error"]["message"]
    missing = post(client, b'{"thread_id": "th_missing"}')
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "thread_not_found"
    assert threads(store_url) == []


def test_a_body_over_the_limit_is_413_before_it_is_checked(client: httpx.Client, store_url: str) -> None:
    body = json.dumps({"blob": "x" * 20_000}).encode()
    answer = post(client, body)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "body_too_large"
    assert threads(store_url) == []


def test_what_the_package_signs_is_accepted(client: httpx.Client, store_url: str) -> None:
    body = '{"order": "from-the-package"}'
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_pkg",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("msg_pkg", now, body),
    }
    answer = client.post("/v1/hooks/orders", content=body.encode(), headers=headers)
    assert answer.status_code == 202, answer.text
    assert [t.events[0].data for t in threads(store_url)] == [{"order": "from-the-package"}]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def test_any_signed_json_is_launched_or_refused_never_a_server_error(serve: Serve) -> None:
    with serve([bot()], hooks=HOOKS, worker=False) as client:

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(payload=_json, raw=st.binary(max_size=40))
        def check(payload: object, raw: bytes) -> None:
            body = json.dumps(payload, allow_nan=True).encode()
            signed = post(client, body, msg_id=f"msg_{hash(body)}")
            assert signed.status_code in (202, 404, 422), (body, signed.text)
            unsigned = client.post("/v1/hooks/orders", content=raw)
            assert unsigned.status_code == 401

        check()


def test_a_hook_that_would_write_threadloom_s_own_events_is_refused(serve: Serve, store_url: str) -> None:
    hooks = {"orders": InboundHook("orders", SECRET, "orders_bot", event_type="human_response")}
    with serve([bot()], hooks=hooks, worker=False) as client:
        answer = post(client, b'{"text": "approved, says the sender"}')
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "reserved_event_type"
    assert threads(store_url) == []
