"""`/v1/threads` over a real uvicorn: launch, read, list, send events, fork, cancel; their errors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from bots import asker, deploy_bot, launch, wait_for
from dirty_equals import IsOneOf, IsStr
from serving import READER, WRITER, Serve

EVENT = {"type": "slack_message", "data": {"text": "deploy the backend", "from": "@alex"}}


def events_of(client: httpx.Client, thread_id: str) -> list[str]:
    return [e["type"] for e in client.get(f"/v1/threads/{thread_id}").json()["events"]]


def test_launch_answers_201_and_a_worker_runs_the_thread(serve: Serve) -> None:
    with serve([deploy_bot()]) as client:
        answer = client.post("/v1/threads", json={"agent": "deploy_bot", "event": EVENT, "metadata": {"team": "ops"}})
        assert answer.status_code == 201
        # The status as the launch left it, or as far as the worker got since.
        assert answer.json() == {
            "thread_id": IsStr(),
            "status": IsOneOf("ready", "waiting_approval"),
            "replayed": False,
        }
        thread = wait_for(client, answer.json()["thread_id"], "waiting_approval")
        assert thread["metadata"] == {"team": "ops", "agent": "deploy_bot"}
        assert thread["events"][0] == {"id": IsStr(), "type": "slack_message", "data": EVENT["data"], "at": IsStr()}


def test_the_same_idempotency_key_launches_once_and_says_it_is_a_replay(serve: Serve) -> None:
    with serve([deploy_bot()], worker=False) as client:
        body = {"agent": "deploy_bot", "event": EVENT}
        first = client.post("/v1/threads", json=body, headers={"Idempotency-Key": "slack-1"})
        again = client.post("/v1/threads", json=body, headers={"Idempotency-Key": "slack-1"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
        assert again.json() == {**first.json(), "replayed": True}
        other = client.post("/v1/threads", json={**body, "event": {"type": "slack_message", "data": "other"}},
                            headers={"Idempotency-Key": "slack-1"})  # fmt: skip
        assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
        assert len(client.get("/v1/threads").json()["threads"]) == 1


def test_launch_refuses_an_unknown_agent_a_runtime_event_type_and_a_taken_id(serve: Serve) -> None:
    with serve([deploy_bot()], worker=False) as client:
        unknown = client.post("/v1/threads", json={"agent": "nobody", "event": EVENT})
        assert unknown.status_code == 422 and "no agent named 'nobody'" in unknown.json()["error"]["message"]
        forged = client.post("/v1/threads", json={"agent": "deploy_bot", "event": {"type": "approval", "data": {}}})
        assert forged.status_code == 422 and forged.json()["error"]["code"] == "reserved_event_type"
        launch(client, thread_id="..mine")  # dots beside other characters are no dot segment
        launch(client, thread_id="mine")
        taken = client.post("/v1/threads", json={"agent": "deploy_bot", "event": EVENT, "thread_id": "mine"})
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "thread_exists"
        assert sorted(t["thread_id"] for t in client.get("/v1/threads").json()["threads"]) == ["..mine", "mine"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"agent": "deploy_bot"},
        {"agent": "deploy_bot", "event": {"type": "Not Snake", "data": 1}},
        {"agent": "deploy_bot", "event": {"type": "x", "data": 1}, "extra": True},
        {"agent": "", "event": {"type": "x"}},
        {"agent": "deploy_bot", "event": {"type": "x"}, "thread_id": "a\u0000b"},
        {"agent": "deploy_bot", "event": {"type": "x"}, "thread_id": "a/b"},  # two path segments
        {"agent": "deploy_bot", "event": {"type": "x"}, "thread_id": "."},  # a dot segment, resolved away
        {"agent": "deploy_bot", "event": {"type": "x"}, "thread_id": ".."},
        {"agent": "deploy_bot", "event": {"type": "x"}, "thread_id": "..."},
    ],
)
def test_a_malformed_launch_is_a_422_json_error(serve: Serve, body: dict[str, object]) -> None:
    with serve([deploy_bot()], worker=False) as client:
        answer = client.post("/v1/threads", json=body)
        assert answer.status_code == 422
        assert answer.json() == {"error": {"code": "invalid_request", "message": IsStr()}}
        assert client.get("/v1/threads").json()["threads"] == []


def test_no_key_is_401_and_a_key_without_the_scope_403_and_nothing_is_written(serve: Serve) -> None:
    with serve([deploy_bot()], worker=False) as client:
        body = {"agent": "deploy_bot", "event": EVENT}
        thread_id = launch(client)
        for path in ("/v1/threads", f"/v1/threads/{thread_id}/events", f"/v1/threads/{thread_id}/cancel"):
            payload = body if path == "/v1/threads" else EVENT
            bare = httpx.post(f"{client.base_url}{path}", json=payload)
            assert bare.status_code == 401 and bare.json()["error"]["code"] == "unauthorized"
            assert bare.headers["www-authenticate"] == "Bearer"
            wrong = httpx.post(f"{client.base_url}{path}", json=payload, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            reader = client.post(path, json=payload, headers={"Authorization": f"Bearer {READER}"})
            assert reader.status_code == 403 and reader.json()["error"] == {
                "code": "forbidden",
                "message": "the key 'reader' lacks the 'write' scope",
            }
        assert events_of(client, thread_id) == ["user_input"] and len(client.get("/v1/threads").json()["threads"]) == 1
        assert httpx.get(f"{client.base_url}/v1/threads/{thread_id}").status_code == 401
        assert httpx.get(f"{client.base_url}/v1/threads", headers={"X-API-Key": READER}).status_code == 200


def test_get_shows_the_events_the_pending_call_with_its_answer_link_usage_and_cost(serve: Serve) -> None:
    with serve([deploy_bot()], public_url="https://loom.example/") as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        assert [e["type"] for e in thread["events"]] == ["user_input", "tool_call"]
        call = thread["events"][1]
        assert thread["pending"] == {
            "id": call["id"],
            "type": "tool_call",
            "data": call["data"],
            "at": call["at"],
            "reason": "approval to run `deploy_backend`",
            "answer_url": IsStr(regex=r"https://loom\.example/v1/answers/a1\.[\w-]+\.[\w-]+"),
        }
        assert thread["agent"] == "deploy_bot" and thread["wake_at"] is None
        assert thread["usage"]["requests"] == 1 and set(thread["usage_by_model"]) == {"scripted"}
        assert thread["cost"] == {"total": 0.0, "by_model": {}, "unpriced": []}
        again = client.get(f"/v1/threads/{thread['thread_id']}").json()
        assert again["pending"]["answer_url"] == thread["pending"]["answer_url"]  # one link per request


def test_only_a_key_that_may_approve_sees_the_answer_link(serve: Serve) -> None:
    # The link answers with no key at all, so showing it to a read-only key would let that key approve.
    with serve([deploy_bot()]) as client:
        thread_id = wait_for(client, launch(client), "waiting_approval")["thread_id"]
        reader = client.get(f"/v1/threads/{thread_id}", headers={"Authorization": f"Bearer {READER}"}).json()
        writer = client.get(f"/v1/threads/{thread_id}", headers={"Authorization": f"Bearer {WRITER}"}).json()
        admin = client.get(f"/v1/threads/{thread_id}").json()
        assert (
            reader["pending"] == {**admin["pending"], "answer_url": None} == {**writer["pending"], "answer_url": None}
        )
        assert admin["pending"]["answer_url"] == IsStr(regex=r".*/v1/answers/a1\.[\w-]+\.[\w-]+")


def test_an_unknown_thread_is_404_everywhere(serve: Serve) -> None:
    with serve([deploy_bot()], worker=False) as client:
        for method, path, body in [
            ("GET", "/v1/threads/nope", None),
            ("POST", "/v1/threads/nope/events", EVENT),
            ("POST", "/v1/threads/nope/fork", {"at": "ev_1"}),
            ("POST", "/v1/threads/nope/cancel", None),
            ("POST", "/v1/threads/nope/approvals/ev_1", {"decision": "approve"}),
            ("POST", "/v1/threads/nope/responses/ev_1", {"text": "hi"}),
            ("GET", "/v1/threads/nope/stream", None),
            ("GET", "/v1/threads/nope/context", None),
        ]:
            answer = client.request(method, path, json=body)
            assert answer.status_code == 404, path
            assert answer.json() == {"error": {"code": "thread_not_found", "message": "no thread has the id 'nope'"}}
        assert client.get("/v1/threads").json()["threads"] == []


def test_the_list_pages_newest_first_by_an_opaque_cursor(serve: Serve) -> None:
    with serve([deploy_bot(), asker()], worker=False) as client:
        made = [launch(client, "deploy_bot" if i % 2 else "asker", thread_id=f"t{i}") for i in range(7)]
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/threads", params=params).json()
            seen += [t["thread_id"] for t in page["threads"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made[::-1] and pages == 3
        exact = client.get("/v1/threads", params={"limit": 7}).json()
        assert len(exact["threads"]) == 7 and exact["next_cursor"] is None  # a full last page says it is last
        askers = client.get("/v1/threads", params={"agent": "asker", "status": "ready"}).json()["threads"]
        assert [t["thread_id"] for t in askers] == ["t6", "t4", "t2", "t0"]
        assert askers[0] == {
            "thread_id": "t6",
            "status": "ready",
            "agent": "asker",
            "parent_id": None,
            "events": 1,
            "updated_at": IsStr(),
            "wake_at": None,
        }
        assert client.get("/v1/threads", params={"status": "done"}).json() == {"threads": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [{"cursor": "not-a-cursor"}, {"cursor": "WzEsIngiLCJ5Il0"}, {"limit": 0}, {"limit": 201}, {"status": "asleep"}],
)
def test_a_bad_cursor_limit_or_status_is_422(serve: Serve, params: dict[str, str | int]) -> None:
    with serve(worker=False) as client:
        answer = client.get("/v1/threads", params=params)
        assert answer.status_code == 422 and answer.json()["error"]["code"] in {"invalid_cursor", "invalid_request"}


def test_a_nul_in_a_thread_id_agent_or_cursor_or_a_lone_surrogate_in_a_cursor_is_a_422_on_every_store(
    serve: Serve,
) -> None:
    # PostgreSQL cannot hold a NUL in text: let through, it was a 503 that a client would retry for ever.
    nul_cursor = base64.urlsafe_b64encode(json.dumps([1, "2026-01-01T00:00:00+00:00", "a\x00"]).encode()).decode()
    surrogate_cursor = base64.urlsafe_b64encode(
        json.dumps([1, "2026-01-01T00:00:00+00:00", "\ud800"]).encode()
    ).decode()
    with serve([deploy_bot()], worker=False) as client:
        for method, path, params, code in [
            ("GET", "/v1/threads/a%00b", {}, "invalid_request"),
            ("POST", "/v1/threads/a%00b/cancel", {}, "invalid_request"),
            ("GET", "/v1/threads/a%00b/context", {}, "invalid_request"),
            ("GET", "/v1/threads/a%00b/stream", {}, "invalid_request"),
            ("GET", "/v1/threads", {"agent": "a\x00b"}, "invalid_request"),
            ("GET", "/v1/threads", {"cursor": nul_cursor}, "invalid_cursor"),
            ("GET", "/v1/threads", {"cursor": surrogate_cursor}, "invalid_cursor"),  # UTF-8 cannot hold it
        ]:
            answer = client.request(method, path, params=params)
            assert (answer.status_code, answer.json()["error"]["code"]) == (422, code), (path, params, answer.text)


def test_an_outside_event_resumes_a_waiting_thread_once_per_key(serve: Serve) -> None:
    with serve([asker()]) as client:
        thread_id = launch(client, "asker")
        wait_for(client, thread_id, "waiting_human")
        reply = {"type": "slack_message", "data": {"text": "production"}}
        sent = client.post(f"/v1/threads/{thread_id}/events", json=reply, headers={"Idempotency-Key": "slack-7"})
        assert sent.status_code == 201 and sent.json()["replayed"] is False
        again = client.post(f"/v1/threads/{thread_id}/events", json=reply, headers={"Idempotency-Key": "slack-7"})
        assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
        other = client.post(
            f"/v1/threads/{thread_id}/events", json={**reply, "data": "x"}, headers={"Idempotency-Key": "slack-7"}
        )
        assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
        thread = wait_for(client, thread_id, "done")
        assert [e["type"] for e in thread["events"]].count("slack_message") == 1
        forged = client.post(f"/v1/threads/{thread_id}/events", json={"type": "tool_call", "data": {}})
        assert forged.status_code == 422 and forged.json()["error"]["code"] == "reserved_event_type"


def test_fork_copies_a_prefix_into_a_new_thread(serve: Serve) -> None:
    with serve([deploy_bot()]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        first = thread["events"][0]["id"]
        forked = client.post(f"/v1/threads/{thread['thread_id']}/fork", json={"at": first})
        # The status as read right after the copy was stored: a worker may have run it on already.
        assert forked.status_code == 201 and forked.json() == {"thread_id": IsStr(), "status": IsStr()}
        assert forked.json()["status"] in {"ready", "running", "waiting_approval"}
        copy = wait_for(client, forked.json()["thread_id"], "waiting_approval")
        assert copy["events"][0] == thread["events"][0]
        assert copy["metadata"] == {"agent": "deploy_bot", "forked_from": thread["thread_id"], "forked_at": first}
        missing = client.post(f"/v1/threads/{thread['thread_id']}/fork", json={"at": "ev_nope"})
        assert missing.status_code == 422 and "no event has that id" in missing.json()["error"]["message"]
        writer = client.post(
            f"/v1/threads/{thread['thread_id']}/fork", json={"at": first}, headers={"Authorization": f"Bearer {READER}"}
        )
        assert writer.status_code == 403 and len(client.get("/v1/threads").json()["threads"]) == 2


def test_cancel_ends_a_thread_for_good_with_its_reason(serve: Serve) -> None:
    with serve([deploy_bot()]) as client:
        thread_id = launch(client)
        wait_for(client, thread_id, "waiting_approval")
        reader = client.post(f"/v1/threads/{thread_id}/cancel", headers={"Authorization": f"Bearer {READER}"})
        assert reader.status_code == 403 and events_of(client, thread_id) == ["user_input", "tool_call"]
        cancelled = client.post(
            f"/v1/threads/{thread_id}/cancel",
            json={"reason": "wrong ticket"},
            headers={"Authorization": f"Bearer {WRITER}"},
        )
        assert cancelled.status_code == 200 and cancelled.json() == {"thread_id": thread_id, "status": "failed"}
        thread = client.get(f"/v1/threads/{thread_id}").json()
        assert thread["events"][-1]["data"] == {"reason": "wrong ticket"} and thread["pending"] is None
        bare = client.post(f"/v1/threads/{launch(client)}/cancel")
        assert bare.status_code == 200 and bare.json()["status"] == "failed"


def test_a_thread_that_has_ended_is_not_cancelled_again_but_a_repeated_delivery_answers_as_before(
    serve: Serve,
) -> None:
    with serve([deploy_bot()]) as client:
        cancelled = wait_for(client, launch(client), "waiting_approval")["thread_id"]
        first = client.post(f"/v1/threads/{cancelled}/cancel", headers={"Idempotency-Key": "c1"})
        assert first.status_code == 200
        done = wait_for(client, launch(client), "waiting_approval")
        client.post(f"/v1/threads/{done['thread_id']}/approvals/{done['pending']['id']}", json={"decision": "approve"})
        wait_for(client, done["thread_id"], "done")
        for thread_id, status in [(cancelled, "failed"), (done["thread_id"], "done")]:
            before = events_of(client, thread_id)
            again = client.post(f"/v1/threads/{thread_id}/cancel", json={"reason": "again"})
            assert again.status_code == 409, again.text
            assert again.json()["error"] == {
                "code": "not_waiting",
                "message": f"cannot cancel thread {thread_id!r}: it is {status!r}, it has ended",
                "thread_status": status,
                "pending_id": None,
                "waiting_for": None,
            }
            assert events_of(client, thread_id) == before
        replay = client.post(f"/v1/threads/{cancelled}/cancel", headers={"Idempotency-Key": "c1"})
        assert (replay.status_code, replay.json()) == (200, first.json())
        assert events_of(client, cancelled).count("failed") == 1


def test_a_body_over_the_limit_is_a_413_on_every_route_that_takes_one_and_nothing_is_written(serve: Serve) -> None:
    with serve([deploy_bot()], worker=False, max_body_bytes=300) as client:
        thread_id = launch(client)
        big = {"type": "slack_message", "data": "x" * 400}
        for path in (
            "/v1/threads",
            f"/v1/threads/{thread_id}/events",
            f"/v1/threads/{thread_id}/approvals/ev_1",
            f"/v1/threads/{thread_id}/responses/ev_1",
            f"/v1/threads/{thread_id}/fork",
            f"/v1/threads/{thread_id}/cancel",
        ):
            declared = client.post(path, json=big)
            assert declared.status_code == 413 and declared.json()["error"]["code"] == "body_too_large", path

            def chunks() -> Iterator[bytes]:  # no Content-Length: the cap counts what arrives
                yield b'{"type": "slack_message", "data": "'
                yield b"x" * 400
                yield b'"}'

            streamed = client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
            assert streamed.status_code == 413, path
        assert events_of(client, thread_id) == ["user_input"] and len(client.get("/v1/threads").json()["threads"]) == 1
