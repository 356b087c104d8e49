"""Any body a stranger sends: a clear 4xx JSON error with nothing written, or the documented success; never a 5xx."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from bots import deploy_bot, launch, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving import Serve

# Strings as JSON can carry them: lone surrogates (as \\u escapes), NUL, long ones, snake_case ones.
texts: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["\ud800", "a\x00b", "x" * 300, "user_input", "slack_message", "tool_call", "approval", "done"]),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(10**400, 10**401) | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=12,
)
events: st.SearchStrategy[Any] = st.one_of(st.fixed_dictionaries({"type": texts, "data": json_values}), json_values)
launches: st.SearchStrategy[Any] = st.one_of(
    st.fixed_dictionaries(
        {"agent": st.sampled_from(["deploy_bot", "nobody"]) | texts, "event": events},
        optional={"thread_id": texts, "metadata": st.dictionaries(texts, json_values, max_size=2), "extra": texts},
    ),
    json_values,
)
decisions: st.SearchStrategy[Any] = st.one_of(
    st.fixed_dictionaries(
        {"decision": st.sampled_from(["approve", "reject"]) | texts},
        optional={"edits": json_values, "feedback": json_values},
    ),
    json_values,
)
answers: st.SearchStrategy[Any] = st.one_of(
    st.fixed_dictionaries({}, optional={"text": json_values, "choice": json_values}), json_values
)
keys: st.SearchStrategy[Any] = st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=8)


def post(client: httpx.Client, path: str, body: Any, key: str | None) -> httpx.Response:
    """POST a body as JSON text that may hold NaN and \\u escapes of lone surrogates (as any client may send)."""
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {})}
    return client.post(path, content=json.dumps(body).encode(), headers=headers)


def check(answer: httpx.Response, allowed: set[int]) -> None:
    assert answer.status_code in allowed, answer.text
    if answer.status_code >= 400:
        error = answer.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


def test_any_launch_body_is_a_launch_or_a_clear_refusal(serve: Serve) -> None:
    with serve([deploy_bot()], worker=False) as client:

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(launches, keys)
        def launching(body: Any, key: str | None) -> None:
            before = len(client.get("/v1/threads", params={"limit": 200}).json()["threads"])
            answer = post(client, "/v1/threads", body, key)
            check(answer, {200, 201, 409, 422})
            after = len(client.get("/v1/threads", params={"limit": 200}).json()["threads"])
            assert after == before + (answer.status_code == 201)

        launching()


def test_any_event_body_is_one_event_or_a_clear_refusal(serve: Serve) -> None:
    with serve([deploy_bot()], worker=False) as client:
        thread_id = launch(client)

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(events, keys)
        def sending(body: Any, key: str | None) -> None:
            before = len(client.get(f"/v1/threads/{thread_id}").json()["events"])
            answer = post(client, f"/v1/threads/{thread_id}/events", body, key)
            check(answer, {200, 201, 409, 422})
            after = len(client.get(f"/v1/threads/{thread_id}").json()["events"])
            assert after == before + (answer.status_code == 201)

        sending()


def test_any_decision_or_answer_body_changes_nothing_it_should_not(serve: Serve) -> None:
    with serve([deploy_bot()]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
    # The same store without a worker: whatever a decision does, nothing else writes to the thread.
    with serve([deploy_bot()], worker=False) as client:
        base = f"/v1/threads/{thread['thread_id']}"
        # Any id but one with a slash, which is two path segments (the router redirects a trailing one).
        ids = st.sampled_from([thread["pending"]["id"], "ev_other"]) | texts.filter(lambda t: bool(t) and "/" not in t)

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.sampled_from(["approvals", "responses"]), ids, decisions | answers, keys)
        def deciding(kind: str, event_id: str, body: Any, key: str | None) -> None:
            before = len(client.get(base).json()["events"])
            answer = post(client, f"{base}/{kind}/{quote(event_id, safe='', errors='surrogatepass')}", body, key)
            check(answer, {200, 404, 409, 422})
            after = len(client.get(base).json()["events"])
            # One decision: +1; its repeat with the same key: 200 and nothing new; any error: nothing.
            assert after == before or (answer.status_code == 200 and after == before + 1)

        deciding()


def test_a_body_that_cannot_be_read_is_a_400_and_one_that_is_not_json_a_422(serve: Serve) -> None:
    # docs/api.md says which: the JSON parser is FastAPI's, and it answers these two with a 400.
    with serve([deploy_bot()], worker=False) as client:
        thread_id = launch(client)
        for content, status, code in [
            (b'{"type": "slack_message", "data": "\xff"}', 400, "bad_request"),  # not UTF-8
            (b"[" * 100_000 + b"]" * 100_000, 400, "bad_request"),  # nested too deep to parse
            (b'{"type": ', 422, "invalid_request"),  # not JSON
            (b'{"type": "x", "data": ' + b"9" * 5000 + b"}", 422, "invalid_request"),  # a number too large
        ]:
            answer = client.post(
                f"/v1/threads/{thread_id}/events", content=content, headers={"Content-Type": "application/json"}
            )
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
            assert "number" in answer.json()["error"]["message"] or b"9" * 5000 not in content
        assert len(client.get(f"/v1/threads/{thread_id}").json()["events"]) == 1
