"""Answer links through a real server: shown, answered once, refused when forged, expired or posted cross-site."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import bots
import httpx
import pytest
from asking import Side, asker, deploy_bot, deployed, types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from serving import SECRET, Serve

from threadloom import Agent, Event, tool
from threadloom.messages import Message
from threadloom.models import ScriptedModel
from threadloom.server._links import AnswerToken, sign_token


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


def test_the_page_shows_the_call_its_arguments_typed_by_the_tool_and_the_thread(serve: Serve, side: Side) -> None:
    with serve([deploy_bot()]) as client:
        thread = side.waiting(side.launch("deploy_bot", text="ship <b>v1.2.3</b>"))
        shown = client.get(side.link(thread), headers={"Accept": "text/html"})
        assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
        page = shown.text
        assert "deploy_bot wants to run <code>deploy</code>" in page
        assert 'name="arg.tag" value="v1.2.3"' in page  # text
        assert '<option value="production" selected>' in page  # a Literal: a choice
        assert 'type="number" step="1"' in page and 'name="arg.replicas" value="2"' in page  # an int, its default
        assert "ship &lt;b&gt;v1.2.3&lt;/b&gt;" in page and "<b>v1.2.3</b>" not in page  # the context, escaped
        assert "frame-ancestors 'none'" in shown.headers["content-security-policy"]
        assert shown.headers["referrer-policy"] == "no-referrer"


def test_json_clients_get_the_request_as_json(serve: Serve, side: Side) -> None:
    with serve([asker()]) as client:
        thread = side.waiting(side.launch("asker", text="deploy", urgency="high"))
        view = client.get(side.link(thread), headers={"Accept": "application/json"}).json()
        assert view["kind"] == "question" and view["urgency"] == "high" and view["waiting"] is True
        assert view["choices"] == ["staging", "production"] and view["format"] == "multiple_choice"
        assert view["context"] == "staging has v1.2.2; production has v1.2.1" and view["answered"] is None


def test_approving_twice_with_the_same_answer_records_it_once(serve: Serve, side: Side) -> None:
    with serve([deploy_bot()]) as client:
        thread_id = side.launch("deploy_bot", text="ship it")
        link = side.link(side.waiting(thread_id))
        body = {"decision": "approve", "edits": {"tag": "v1.2.4"}}
        first = client.post(link, json=body)
        assert first.status_code == 200 and first.json()["answered"]["by"] == "answer_link"
        again = client.post(link, json={"decision": "approve", "edits": {"tag": "v1.2.4", "environment": "production"}})
        assert again.status_code == 200  # the same arguments, spelled out: the same answer
        done = side.wait(thread_id, lambda t: t.status == "done")
        assert types(done).count("approval") == 1 and deployed == ["v1.2.4@productionx2"]
        [call] = [e for e in done.events if e.type == "tool_call"]
        [approval] = [e for e in done.events if e.type == "approval"]
        assert approval.data == {"call_id": call.id, "approved": True, "edits": {"tag": "v1.2.4"}, "by": "answer_link"}
        assert client.post(link, json=body).status_code == 200  # after the run, still the same answer


def test_a_different_answer_is_refused_saying_when_the_first_was_given(serve: Serve, side: Side) -> None:
    with serve([deploy_bot()]) as client:
        thread_id = side.launch("deploy_bot", text="ship it")
        link = side.link(side.waiting(thread_id))
        assert client.post(link, json={"decision": "approve"}).status_code == 200
        refused = client.post(link, json={"decision": "reject", "feedback": "no"})
        assert refused.status_code == 409
        error = refused.json()["error"]
        approval = next(e for e in side.get(thread_id).events if e.type == "approval")
        assert error["code"] == "already_answered" and error["by"] == "answer_link"
        assert datetime.fromisoformat(error["answered_at"]) == approval.at
        assert f"at {error['answered_at']} by answer_link" in error["message"]
        also = client.post(link, json={"decision": "approve", "edits": {"tag": "v9"}})
        assert also.status_code == 409  # other arguments are another answer too
        page = client.get(link).text
        assert "Approved" in page and "by the answer link" in page and 'name="csrf"' not in page


def test_a_rejection_without_feedback_is_recorded_as_rejected_but_the_form_asks_why(serve: Serve, side: Side) -> None:
    # As the API's approvals route: a program may reject with no reason; a person on the page is asked for one.
    with serve([deploy_bot()]) as client:
        thread = side.waiting(side.launch("deploy_bot", text="ship it"))
        link = side.link(thread)
        form = client.post(link, data={"csrf": _csrf(client.get(link).text), "action": "reject", "feedback": " "})
        assert form.status_code == 422 and "say why you reject it" in form.text and side.get(thread.id) == thread
        rejected = client.post(link, json={"decision": "reject"})
        assert rejected.status_code == 200 and rejected.json()["answered"]["feedback"] == "rejected"


def test_a_question_is_answered_by_one_of_its_choices(serve: Serve, side: Side) -> None:
    with serve([asker()]) as client:
        thread_id = side.launch("asker", text="deploy")
        link = side.link(side.waiting(thread_id))
        wrong = client.post(link, json={"choice": "qa"})
        assert wrong.status_code == 422 and "staging" in wrong.json()["error"]["message"]
        assert types(side.get(thread_id)).count("human_response") == 0
        spelled = client.post(link, json={"choice": "Production"})  # as the API's route: spelled as offered
        assert spelled.status_code == 422 and "none of the request's choices" in spelled.json()["error"]["message"]
        assert client.post(link, json={"choice": "production"}).status_code == 200
        assert client.post(link, json={"text": "production"}).status_code == 200  # the same choice
        assert client.post(link, json={"text": "staging"}).status_code == 409
        done = side.wait(thread_id, lambda t: t.status == "done")
        [answer] = [e for e in done.events if e.type == "human_response"]
        [asked] = [e for e in done.events if e.type == "request_human_input"]
        assert answer.data == {"request_id": asked.id, "text": "production", "by": "answer_link"}


def test_a_yes_no_question_takes_yes_or_no_as_the_api_does(serve: Serve, side: Side) -> None:
    with serve([bots.asker(bots.YES_NO, name="yes_no")]) as client:
        link = side.link(side.waiting(side.launch("yes_no", text="deploy")))
        assert client.get(link, headers={"Accept": "application/json"}).json()["choices"] == ["yes", "no"]
        wrong = client.post(link, json={"choice": "maybe"})
        assert wrong.status_code == 422 and wrong.json()["error"] == {
            "code": "invalid_answer",
            "message": "'maybe' is none of the request's choices: 'yes', 'no'",
        }
        form = client.post(link, data={"csrf": _csrf(client.get(link).text), "choice": "maybe"})
        assert form.status_code == 422 and "none of the request&#39;s choices" in form.text
        large = client.post(
            link, content=b'{"text": ' + b"9" * 5000 + b"}", headers={"Content-Type": "application/json"}
        )
        assert large.status_code == 422 and "number" in large.json()["error"]["message"]
        assert client.post(link, json={"choice": "yes"}).status_code == 200


def test_the_form_posts_with_its_csrf_token_and_edited_arguments(serve: Serve, side: Side) -> None:
    with serve([deploy_bot()]) as client:
        thread_id = side.launch("deploy_bot", text="ship it")
        link = side.link(side.waiting(thread_id))
        csrf = _csrf(client.get(link).text)
        form = {
            "csrf": csrf,
            "action": "approve",
            "arg.tag": "v2.0.0",
            "arg.environment": "staging",
            "arg.replicas": "x",
        }
        bad = client.post(link, data=form)
        assert bad.status_code == 422 and "replicas: &#39;x&#39; is not a whole number" in bad.text
        assert 'value="v2.0.0"' in bad.text  # what was typed is kept
        sent = client.post(link, data={**form, "arg.replicas": "3"})
        assert sent.status_code == 303 and sent.headers["location"] == f"{link}?answered=true"
        assert "Thank you" in client.get(sent.headers["location"]).text
        done = side.wait(thread_id, lambda t: t.status == "done")
        assert deployed == ["v2.0.0@stagingx3"]
        [call] = [e for e in done.events if e.type == "tool_call"]
        [approval] = [e for e in done.events if e.type == "approval"]
        edits = {"tag": "v2.0.0", "environment": "staging", "replicas": 3}
        assert approval.data == {"call_id": call.id, "approved": True, "edits": edits, "by": "answer_link"}


noted: list[tuple[str, str | None]] = []


@tool(policy="approval")
def post_note(message: str, note: str | None = None) -> str:
    """Post a message.

    Args:
        message: what to post
        note: a note beside it
    """
    noted.append((message, note))
    return "posted"


def _note_step(messages: Sequence[Message]) -> str:
    if "<post_note_result>" in messages[-1].content:
        return json.dumps({"intent": "done_for_now", "message": "Posted."})
    return json.dumps({"intent": "post_note", "message": "line one\nline two"})


def test_a_form_approved_as_shown_changes_no_argument(serve: Serve, side: Side) -> None:
    noted.clear()
    agent = Agent(name="noter", model=ScriptedModel([_note_step] * 10), tools=[post_note])
    with serve([agent]) as client:
        thread_id = side.launch("noter", text="post it")
        link = side.link(side.waiting(thread_id))
        page = client.get(link).text
        assert 'name="arg.note" value=""' in page  # None, shown as an empty field
        # As a browser sends the form untouched: a textarea's line breaks as CRLF, the empty field as "".
        form = {"csrf": _csrf(page), "action": "approve", "arg.message": "line one\r\nline two", "arg.note": ""}
        assert client.post(link, data=form).status_code == 303
        done = side.wait(thread_id, lambda t: t.status == "done")
        [call] = [e for e in done.events if e.type == "tool_call"]
        [approval] = [e for e in done.events if e.type == "approval"]
        assert approval.data == {"call_id": call.id, "approved": True, "edits": {}, "by": "answer_link"}
        assert noted == [("line one\nline two", None)]


@pytest.mark.parametrize("csrf", [None, "", "forged", "token-of-another-link"])
def test_a_form_without_its_csrf_token_appends_nothing(serve: Serve, side: Side, csrf: str | None) -> None:
    with serve([deploy_bot()]) as client:
        thread = side.waiting(side.launch("deploy_bot", text="ship it"))
        link = side.link(thread)
        if csrf == "token-of-another-link":  # the same request, another expiry: a genuine link, another token
            assert thread.pending is not None
            other = sign_token(
                SECRET, AnswerToken(thread.id, thread.pending.id, datetime.now(UTC) + timedelta(hours=1))
            )
            csrf = _csrf(client.get(f"/v1/answers/{other}").text)
        form = {"action": "approve", **({"csrf": csrf} if csrf is not None else {})}
        refused = client.post(link, data=form)
        assert refused.status_code == 403 and "another site" in refused.text
        assert refused.headers["content-type"].startswith("text/html")
        assert side.get(thread.id) == thread


def test_text_plain_is_not_taken_for_json(serve: Serve, side: Side) -> None:
    with serve([deploy_bot()]) as client:
        thread = side.waiting(side.launch("deploy_bot", text="ship it"))
        sent = client.post(
            side.link(thread), content=b'{"decision": "approve"}', headers={"Content-Type": "text/plain"}
        )
        assert sent.status_code == 415 and side.get(thread.id) == thread


def test_an_expired_or_forged_link_is_refused_and_appends_nothing(serve: Serve, side: Side) -> None:
    with serve([deploy_bot()]) as client:
        thread = side.waiting(side.launch("deploy_bot", text="ship it"))
        assert thread.pending is not None
        expired = sign_token(
            SECRET, AnswerToken(thread.id, thread.pending.id, datetime.now(UTC) - timedelta(seconds=1))
        )
        forged = sign_token(
            b"another secret" * 3, AnswerToken(thread.id, thread.pending.id, datetime.now(UTC) + timedelta(days=1))
        )
        for token, status, code in [
            (expired, 410, "link_expired"),
            (forged, 403, "invalid_link"),
            ("nonsense", 403, "invalid_link"),
        ]:
            answered = client.post(f"/v1/answers/{token}", json={"decision": "approve"})
            assert (answered.status_code, answered.json()["error"]["code"]) == (status, code)
            assert client.get(f"/v1/answers/{token}", headers={"Accept": "application/json"}).status_code == status
            shown = client.get(f"/v1/answers/{token}", headers={"Accept": "text/html"})
            assert shown.status_code == status and "This link cannot be used" in shown.text
            form = client.post(f"/v1/answers/{token}", data={"action": "approve", "csrf": "x"})
            assert form.status_code == status and form.headers["content-type"].startswith("text/html")
        assert side.get(thread.id) == thread and deployed == []


def test_a_link_whose_thread_moved_on_says_so(serve: Serve, side: Side) -> None:
    with serve([asker()]) as client:
        thread_id = side.launch("asker", text="deploy")
        link = side.link(side.waiting(thread_id))
        side.call(lambda r: r.send_event_sync(thread_id, Event("slack_message", {"text": "never mind, staging"})))
        moved = client.post(link, json={"choice": "staging"})
        assert moved.status_code == 409 and moved.json()["error"]["code"] == "not_waiting"


def test_json_nested_too_deep_is_a_422_and_the_log_never_shows_the_link(
    serve: Serve, side: Side, caplog: pytest.LogCaptureFixture
) -> None:
    with serve([deploy_bot()]) as client, caplog.at_level(logging.DEBUG, logger="threadloom"):
        thread = side.waiting(side.launch("deploy_bot", text="ship it"))
        link = side.link(thread)
        deep = b"[" * 100_000 + b"]" * 100_000  # past the parser's recursion limit
        sent = client.post(link, content=deep, headers={"Content-Type": "application/json"})
        assert (sent.status_code, sent.json()["error"]["code"]) == (422, "invalid_answer")
        assert side.get(thread.id) == thread
    token = link.rsplit("/", 1)[1]
    ours = [record for record in caplog.records if record.name.startswith("threadloom")]  # not the test's client
    assert all(token not in record.getMessage() for record in ours)


@tool(policy="approval")
def connect(host: str, pin: SecretStr, password: str) -> str:
    """Connect to a database.

    Args:
        host: where
        pin: a secret by its type
        password: a secret by its name
    """
    return f"connected to {host}"


def _connect_step(messages: Sequence[Message]) -> str:
    if "<connect_result>" in messages[-1].content:
        return json.dumps({"intent": "done_for_now", "message": "Connected."})
    return json.dumps({"intent": "connect", "host": "db1", "pin": "0000", "password": "placeholder"})


def test_edited_secrets_are_redacted_where_the_link_shows_the_answer(serve: Serve, side: Side) -> None:
    agent = Agent(name="connector", model=ScriptedModel([_connect_step] * 10), tools=[connect])
    with serve([agent]) as client:
        thread = side.waiting(side.launch("connector", text="connect"))
        assert thread.pending is not None
        edits = {"host": "db2", "pin": "4321-real-pin", "password": "Hunter2-real-pw"}
        approved = client.post(
            f"/v1/threads/{thread.id}/approvals/{thread.pending.id}", json={"decision": "approve", "edits": edits}
        )
        assert approved.status_code == 200
        view = client.get(side.link(thread), headers={"Accept": "application/json"}).json()
        assert view["answered"]["edits"] == {"host": "db2", "pin": "[REDACTED]", "password": "[REDACTED]"}
        shown = client.get(side.link(thread), headers={"Accept": "text/html"}).text
        assert "db2" in shown and "4321-real-pin" not in shown and "Hunter2-real-pw" not in shown


def test_values_from_events_are_escaped_on_the_page(serve: Serve, side: Side) -> None:
    with serve([asker()]) as client:
        thread_id = side.launch("asker", text="<script>alert('x')</script>", urgency="low")
        page = client.get(side.link(side.waiting(thread_id))).text
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["decision", "edits", "feedback", "text", "choice", "x"]), inner, max_size=3
            )
        ),
        max_leaves=8,
    )
)
def test_any_json_body_gets_a_clear_answer_and_at_most_one_decision(
    body: object, answers: tuple[httpx.Client, Side, str, str]
) -> None:
    client, side, thread_id, link = answers
    sent = client.post(link, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert sent.status_code in (200, 409, 422), sent.text
    assert "error" in sent.json() or sent.json()["answered"] is not None
    assert types(side.get(thread_id)).count("human_response") <= 1


@pytest.fixture
def answers(serve: Serve, store_url: str) -> Iterator[tuple[httpx.Client, Side, str, str]]:
    """A question waiting on a server without a worker (this test's runtime runs the agent): one per test, not per example."""
    with serve([asker()], worker=False) as client:
        side = Side(store_url, agents=[asker()])
        thread_id = side.launch("asker", text="deploy")
        side.call(lambda r: r.run_until_idle_sync())
        yield client, side, thread_id, side.link(side.get(thread_id))
        side.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    form=st.dictionaries(
        st.sampled_from(["action", "arg.tag", "arg.environment", "arg.replicas", "feedback", "text", "other"]),
        st.sampled_from(["approve", "reject", "respond", "", "3", "-1", "1e999", "staging"]) | st.text(max_size=30),
        max_size=5,
    )
)
def test_any_form_gets_a_clear_answer_and_at_most_one_decision(
    form: dict[str, str], approvals: tuple[httpx.Client, Side, str, str, str]
) -> None:
    client, side, thread_id, link, csrf = approvals
    sent = client.post(link, data={**form, "csrf": csrf})
    assert sent.status_code in (303, 409, 422), sent.text
    assert types(side.get(thread_id)).count("approval") <= 1


@pytest.fixture
def approvals(serve: Serve, store_url: str) -> Iterator[tuple[httpx.Client, Side, str, str, str]]:
    """A deploy waiting for approval on a server without a worker: one per test, not per example."""
    with serve([deploy_bot()], worker=False) as client:
        side = Side(store_url, agents=[deploy_bot()])
        thread_id = side.launch("deploy_bot", text="ship it")
        side.call(lambda r: r.run_until_idle_sync())
        link = side.link(side.get(thread_id))
        yield client, side, thread_id, link, _csrf(client.get(link).text)  # bound to the link: the same throughout
        side.close()
