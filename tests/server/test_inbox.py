"""The web inbox through a real server: sign-in, the list by urgency, deciding from a thread's page, live updates."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Generator, Iterator
from http.cookies import SimpleCookie

import bots
import httpx
import pytest
from asking import Side, asker, deploy_bot, deployed, types
from serving import ADMIN, KEYS, READER, SECRET, Serve, serving

from threadloom import Event, Runtime
from threadloom.server import ApiKey, KeyRing, ServerConfig, create_app, parse_keys


@pytest.fixture
def side(store_url: str) -> Iterator[Side]:
    runtime = Side(store_url)
    yield runtime
    runtime.close()


@pytest.fixture(autouse=True)
def _no_effects() -> None:
    deployed.clear()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: httpx.Client, key: str) -> httpx.Response:
    """Sign in through the form, as a browser does (the client keeps the cookies)."""
    csrf = _csrf(client.get("/inbox/login").text)
    return client.post("/inbox/login", data={"csrf": csrf, "key": key, "next": "/inbox"})


@contextlib.contextmanager
def browser(client: httpx.Client) -> Generator[httpx.Client]:
    """A client of the same server with no API key: only what the inbox's cookies allow."""
    with httpx.Client(base_url=client.base_url, timeout=30) as plain:
        yield plain


def test_signing_in_sets_a_strict_http_only_cookie_that_holds_no_secret(serve: Serve) -> None:
    with serve() as api, browser(api) as client:
        assert client.get("/inbox").headers["location"] == "/inbox/login?next=/inbox"
        signed = sign_in(client, ADMIN)
        assert signed.status_code == 303 and signed.headers["location"] == "/inbox"
        [header] = [h for h in signed.headers.get_list("set-cookie") if h.startswith("threadloom_session=")]
        cookie = SimpleCookie(header)["threadloom_session"]
        assert cookie["httponly"] is True and cookie["samesite"] == "strict" and cookie["path"] == "/inbox"
        assert ADMIN not in header and "admin_secret" not in header
        assert client.get("/inbox").status_code == 200


def test_a_bad_key_a_stale_form_and_a_key_without_read_are_refused(serve: Serve) -> None:
    with serve() as api, browser(api) as client:
        unknown = sign_in(client, "tlk_not_a_key")
        assert unknown.status_code == 401 and "This API key is not known." in unknown.text
        assert "threadloom_session" not in unknown.headers.get("set-cookie", "")
        client.get("/inbox/login")
        stale = client.post("/inbox/login", data={"csrf": "forged", "key": ADMIN})
        assert stale.status_code == 403 and "threadloom_session" not in stale.headers.get("set-cookie", "")
        assert client.get("/inbox").status_code == 303


def test_a_key_without_read_cannot_sign_in(store_url: str) -> None:
    keys = KeyRing(parse_keys(f"{KEYS},hook:tlk_hook_secret:write"))
    config = ServerConfig(runtime=Runtime(store=store_url), keys=keys, secret=SECRET)
    with serving(create_app(config)) as url, httpx.Client(base_url=url, timeout=30) as client:
        refused = sign_in(client, "tlk_hook_secret")
        assert refused.status_code == 403 and "lacks the read scope" in refused.text


def test_a_session_ends_when_its_key_is_deleted_and_at_sign_out(store_url: str) -> None:
    stored = list(parse_keys("temp:tlk_temp_secret:read+approve"))

    async def read() -> list[ApiKey]:
        return list(stored)

    keys = KeyRing(parse_keys(KEYS), stored=read, refresh_seconds=0)
    config = ServerConfig(runtime=Runtime(store=store_url), keys=keys, secret=SECRET)
    with serving(create_app(config)) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert sign_in(client, "tlk_temp_secret").status_code == 303
        assert client.get("/inbox").status_code == 200
        stored.clear()
        assert client.get("/inbox").status_code == 303  # the key is gone: so is the session
        assert sign_in(client, ADMIN).status_code == 303
        page = client.get("/inbox").text
        assert client.post("/inbox/logout", data={"csrf": "forged"}).status_code == 403
        out = client.post("/inbox/logout", data={"csrf": _csrf(page)})
        assert out.status_code == 303 and client.get("/inbox").status_code == 303


def test_the_inbox_lists_what_waits_by_urgency_then_age(serve: Serve, side: Side) -> None:
    with serve([deploy_bot(), asker()]) as api, browser(api) as client:
        sign_in(client, READER)
        assert "Nothing waits for you." in client.get("/inbox").text
        launched = [
            side.launch("asker", text="low one", urgency="low"),
            side.launch("asker", text="medium one", urgency="medium"),
            side.launch("deploy_bot", text="ship it"),
            side.launch("asker", text="high one", urgency="high"),
        ]
        waiting = [side.waiting(thread_id) for thread_id in launched]
        answered = side.waiting(side.launch("asker", text="answered"))
        assert answered.pending is not None
        request_id = answered.pending.id
        side.call(lambda r: r.respond_sync(answered.id, request_id, "staging"))  # no longer waits: not listed
        page = client.get("/inbox").text
        order = re.findall(r'href="/inbox/threads/([^"]+)"', page)
        by_age = sorted(waiting[2:], key=lambda t: t.pending.at if t.pending else t.events[0].at)
        assert order == [
            *(t.id for t in by_age),
            launched[1],
            launched[0],
        ]  # high (approvals too) by age, then medium, low
        assert "Run <code>deploy</code>" in page and "tag: v1.2.3 · environment: production · replicas: 2" in page
        assert "Which environment should get v1.2.3?" in page
        assert 'class="count">4<' in page


def test_approving_from_the_thread_page_with_edited_arguments(serve: Serve, side: Side) -> None:
    with serve([deploy_bot()]) as api, browser(api) as client:
        sign_in(client, ADMIN)
        thread = side.waiting(side.launch("deploy_bot", text="ship it"))
        assert thread.pending is not None
        page = client.get(f"/inbox/threads/{thread.id}").text
        assert 'name="arg.tag" value="v1.2.3"' in page and "Waiting for approval" in page
        assert "<strong>Step 1</strong> → tool_call ·" in page  # the model's context, with its tokens
        assert re.search(r"system · \d+ tokens", page) and "What is the next step?" in page
        action = f"/inbox/threads/{thread.id}/requests/{thread.pending.id}"
        form = {"csrf": _csrf(page), "action": "approve", "arg.tag": "v1.3.0", "arg.environment": "production"}
        sent = client.post(action, data=form)
        assert sent.status_code == 303 and sent.headers["location"] == f"/inbox/threads/{thread.id}?flash=approved"
        assert "Approved: the call runs next." in client.get(sent.headers["location"]).text
        done = side.wait(thread.id, lambda t: t.status == "done")
        [approval] = [e for e in done.events if e.type == "approval"]
        edits = {"tag": "v1.3.0"}
        assert approval.data == {"call_id": thread.pending.id, "approved": True, "edits": edits, "by": "key:admin"}
        assert deployed == ["v1.3.0@productionx2"]
        again = client.post(action, data=form)
        assert again.status_code == 409 and "answered already by key:admin" in again.text


def test_rejecting_needs_feedback_and_answering_takes_a_choice(serve: Serve, side: Side) -> None:
    with serve([deploy_bot(), asker()]) as api, browser(api) as client:
        sign_in(client, ADMIN)
        thread = side.waiting(side.launch("deploy_bot", text="ship it"))
        assert thread.pending is not None
        csrf = _csrf(client.get(f"/inbox/threads/{thread.id}").text)
        action = f"/inbox/threads/{thread.id}/requests/{thread.pending.id}"
        empty = client.post(action, data={"csrf": csrf, "action": "reject", "feedback": " "})
        assert empty.status_code == 422 and "say why you reject it" in empty.text
        assert (
            client.post(action, data={"csrf": csrf, "action": "reject", "feedback": "staging first"}).status_code == 303
        )
        assert "Not deployed" in str(side.wait(thread.id, lambda t: t.status == "done").events[-1].data)
        asked = side.waiting(side.launch("asker", text="where?"))
        assert asked.pending is not None
        page = client.get(f"/inbox/threads/{asked.id}").text
        assert 'name="choice" value="staging"' in page and "staging has v1.2.2" in page
        answered = client.post(
            f"/inbox/threads/{asked.id}/requests/{asked.pending.id}", data={"csrf": _csrf(page), "choice": "staging"}
        )
        assert answered.status_code == 303
        assert "Going with staging." in str(side.wait(asked.id, lambda t: t.status == "done").events[-1].data)


def test_a_yes_no_question_shows_yes_and_no_and_takes_only_those(serve: Serve, side: Side) -> None:
    with serve([bots.asker(bots.YES_NO, name="yes_no")]) as api, browser(api) as client:
        sign_in(client, ADMIN)
        asked = side.waiting(side.launch("yes_no", text="deploy?"))
        assert asked.pending is not None
        page = client.get(f"/inbox/threads/{asked.id}").text
        assert 'name="choice" value="yes"' in page and 'name="choice" value="no"' in page
        action = f"/inbox/threads/{asked.id}/requests/{asked.pending.id}"
        wrong = client.post(action, data={"csrf": _csrf(page), "choice": "maybe"})
        assert wrong.status_code == 422 and "none of the request&#39;s choices" in wrong.text
        assert types(side.get(asked.id)).count("human_response") == 0
        assert client.post(action, data={"csrf": _csrf(page), "choice": "no"}).status_code == 303


def test_deciding_needs_approve_and_a_csrf_token_and_appends_nothing_otherwise(serve: Serve, side: Side) -> None:
    with serve([deploy_bot()]) as api, browser(api) as reader, browser(api) as admin:
        thread = side.waiting(side.launch("deploy_bot", text="ship it"))
        assert thread.pending is not None
        action = f"/inbox/threads/{thread.id}/requests/{thread.pending.id}"
        sign_in(reader, READER)
        page = reader.get(f"/inbox/threads/{thread.id}").text
        assert "<fieldset disabled>" in page and "needs the <code>approve</code> scope" in page
        refused = reader.post(action, data={"csrf": _csrf(page), "action": "approve"})
        assert refused.status_code == 403 and "lacks the approve scope" in refused.text
        sign_in(admin, ADMIN)
        for csrf in (None, "", _csrf(page)):  # none, empty, another session's
            form = {"action": "approve", **({"csrf": csrf} if csrf is not None else {})}
            assert admin.post(action, data=form).status_code == 403
        with browser(api) as nobody:
            anonymous = nobody.post(action, data={"action": "approve"})
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/inbox/login")
        assert side.get(thread.id) == thread


def test_values_from_events_are_escaped_on_the_thread_page(serve: Serve, side: Side) -> None:
    with serve([asker()]) as api, browser(api) as client:
        sign_in(client, READER)
        thread = side.waiting(side.launch("asker", text="<script>alert(1)</script>"))
        hostile = Event("note_x", {"<img src=x onerror=alert(1)>": "</pre><script>"})
        side.call(lambda r: r.send_event_sync(thread.id, hostile))
        page = client.get(f"/inbox/threads/{thread.id}").text
        assert "<script>alert(1)" not in page and "<img src=x" not in page and "</pre><script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        listing = client.get("/inbox").text
        assert "<script>alert" not in listing


def test_a_thread_id_with_url_characters_is_linked_to_itself(serve: Serve, side: Side) -> None:
    with serve([asker()]) as api, browser(api) as client:
        sign_in(client, READER)
        launched = side.call(
            lambda r: r.launch_sync("asker", Event("user_input", {"text": "odd id"}), thread_id="q?x%41#y")
        )
        side.waiting(launched)
        [href] = re.findall(r'href="(/inbox/threads/[^"]+)"', client.get("/inbox").text)
        assert href == "/inbox/threads/q%3Fx%2541%23y"
        page = client.get(href)
        assert (
            page.status_code == 200 and "q?x%41#y" in page.text and "/inbox/threads/q%3Fx%2541%23y/stream" in page.text
        )
        refused = api.post(
            "/v1/threads", json={"agent": "asker", "thread_id": "team/a", "event": {"type": "user_input"}}
        )
        assert refused.status_code == 422  # a `/` could never be reached in a path


def test_the_stream_sends_new_events_and_the_state_to_a_signed_in_page(serve: Serve, side: Side) -> None:
    with serve([deploy_bot()]) as api, browser(api) as client:
        thread = side.waiting(side.launch("deploy_bot", text="ship it"))
        assert thread.pending is not None
        with client.stream("GET", f"/inbox/threads/{thread.id}/stream") as response:
            assert next(sse_messages(response))["event"] == "signed_out"
        sign_in(client, ADMIN)
        with client.stream("GET", f"/inbox/threads/{thread.id}/stream?after={thread.events[0].id}") as response:
            messages = sse_messages(response)
            first = next(messages)
            assert first["event"] == "append" and first["id"] == thread.events[1].id
            assert "Calls deploy" in json.loads(first["data"])["html"]
            state = json.loads(next(messages)["data"])
            assert (state["status"], state["pending"]) == ("waiting_approval", thread.pending.id)
            assert "Approve and run" in state["panel"]
            call_id = thread.pending.id
            side.call(lambda r: r.approve_sync(thread.id, call_id))
            seen: list[str] = []
            for message in messages:
                if message["event"] == "state" and json.loads(message["data"])["status"] == "done":
                    break
                seen.append(message["event"])
            assert next(messages)["event"] == "end"  # done: the stream ends, the page stops listening
        steps = client.get(f"/inbox/threads/{thread.id}/steps")
        assert steps.status_code == 200 and "<strong>Step 2</strong> → done_for_now" in steps.text
        assert types(side.get(thread.id))[-1] == "done_for_now" and "append" in seen


def sse_messages(response: httpx.Response) -> Iterator[dict[str, str]]:
    """The server-sent events of a response, each as its fields."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def test_a_thread_of_an_agent_this_server_does_not_run_is_shown_without_its_steps(serve: Serve, side: Side) -> None:
    with serve([deploy_bot()], worker=False) as api, browser(api) as client:
        sign_in(client, READER)
        thread_id = side.launch("elsewhere", text="hello")
        page = client.get(f"/inbox/threads/{thread_id}").text
        assert "This server does not run the agent of this thread" in page and "hello" in page


def test_a_thread_id_with_a_nul_is_refused_with_a_422_on_every_store(serve: Serve, side: Side) -> None:
    # PostgreSQL cannot hold a NUL: an id with one must not reach the store's query (it may fail it, a 503).
    # The API's routes refuse it with a 422 first; the inbox's do the same.
    with serve([deploy_bot()]) as api, browser(api) as admin:
        sign_in(admin, ADMIN)
        thread = side.waiting(side.launch("deploy_bot", text="ship it"))
        assert thread.pending is not None
        csrf = _csrf(admin.get(f"/inbox/threads/{thread.id}").text)
        refused = admin.post("/inbox/threads/a%00b/requests/ev_1", data={"csrf": csrf, "action": "approve"})
        assert (refused.status_code, refused.json()["error"]["code"]) == (422, "invalid_request")
        for path in ("/inbox/threads/a%00b", "/inbox/threads/a%00b/steps", "/inbox/threads/a%00b/stream"):
            shown = admin.get(path)
            assert (shown.status_code, shown.json()["error"]["code"]) == (422, "invalid_request"), path
        assert side.get(thread.id) == thread


def test_a_cookie_or_csrf_field_with_non_ascii_characters_is_refused_not_a_500(serve: Serve) -> None:
    # hmac.compare_digest raises TypeError on a str that is not ASCII: a stranger's cookie or form
    # field holding one must read as not signed, as any other forged value does.
    with serve() as api, browser(api) as client:
        cookie = [(b"Cookie", "threadloom_session=s1.a.\u00e9".encode())]  # the UTF-8 bytes a client may send
        assert client.get("/inbox/login", headers=cookie).status_code == 200
        assert client.get("/inbox", headers=cookie).status_code == 303
        client.get("/inbox/login")
        forged = client.post("/inbox/login", data={"csrf": "\u00e9", "key": ADMIN})
        assert forged.status_code == 403
        sign_in(client, ADMIN)
        assert client.post("/inbox/logout", data={"csrf": "\u00e9"}).status_code == 403
