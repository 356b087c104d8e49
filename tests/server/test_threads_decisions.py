"""Approvals and answers over a real uvicorn: who decided, exactly once, and a 409 that says what the thread waits for."""

from __future__ import annotations

import pytest
from bots import FREE, YES_NO, asker, deploy_bot, deployed, launch, wait_for
from dirty_equals import IsStr
from serving import WRITER, Serve


@pytest.fixture(autouse=True)
def _no_deploys_yet() -> None:
    deployed.clear()


def test_approve_runs_the_call_once_and_records_the_key_that_decided(serve: Serve) -> None:
    with serve([deploy_bot()]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        url = f"/v1/threads/{thread['thread_id']}/approvals/{thread['pending']['id']}"
        answers = [
            client.post(url, json={"decision": "approve"}, headers={"Idempotency-Key": "click"}) for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert answers[0].json() == {"thread_id": thread["thread_id"], "status": "ready"}
        done = wait_for(client, thread["thread_id"], "done")
        [approval] = [e for e in done["events"] if e["type"] == "approval"]
        assert approval["data"] == {
            "call_id": thread["pending"]["id"],
            "approved": True,
            "edits": {},
            "by": "key:admin",
        }
        assert deployed == ["v1.2.3@production"]


def test_an_approval_with_edits_runs_the_edited_call(serve: Serve) -> None:
    with serve([deploy_bot()]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        url = f"/v1/threads/{thread['thread_id']}/approvals/{thread['pending']['id']}"
        typo = client.post(url, json={"decision": "approve", "edits": {"environmnet": "staging"}})
        assert typo.status_code == 422 and "environmnet" in typo.json()["error"]["message"]
        bad = client.post(url, json={"decision": "approve", "edits": {"environment": "moon"}})
        assert bad.status_code == 422
        assert client.post(url, json={"decision": "approve", "edits": {"environment": "staging"}}).status_code == 200
        wait_for(client, thread["thread_id"], "done")
        assert deployed == ["v1.2.3@staging"]


def test_a_rejection_carries_its_feedback_and_nothing_runs(serve: Serve) -> None:
    with serve([deploy_bot()]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        url = f"/v1/threads/{thread['thread_id']}/approvals/{thread['pending']['id']}"
        mixed = client.post(url, json={"decision": "reject", "edits": {"tag": "v1"}})
        assert mixed.status_code == 422 and "edits go with an approval" in mixed.json()["error"]["message"]
        assert client.post(url, json={"decision": "reject", "feedback": "use staging first"}).status_code == 200
        done = wait_for(client, thread["thread_id"], "done")
        [rejection] = [e for e in done["events"] if e["type"] == "approval"]
        assert rejection["data"] == {
            "call_id": thread["pending"]["id"],
            "approved": False,
            "feedback": "use staging first",
            "by": "key:admin",
        }
        assert deployed == []


def test_a_decision_the_thread_does_not_wait_for_is_a_409_saying_what_it_waits_for(serve: Serve) -> None:
    with serve([deploy_bot(), asker()]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        call_id = thread["pending"]["id"]
        wrong = client.post(f"/v1/threads/{thread['thread_id']}/approvals/ev_other", json={"decision": "approve"})
        assert wrong.status_code == 409
        assert wrong.json() == {
            "error": {
                "code": "not_waiting",
                "message": IsStr(regex=rf".*the pending one is '{call_id}'"),
                "thread_status": "waiting_approval",
                "pending_id": call_id,
                "waiting_for": "approval to run `deploy_backend`",
            }
        }
        answer = client.post(f"/v1/threads/{thread['thread_id']}/responses/{call_id}", json={"text": "yes"})
        assert answer.status_code == 409 and answer.json()["error"]["thread_status"] == "waiting_approval"
        url = f"/v1/threads/{thread['thread_id']}/approvals/{call_id}"
        assert client.post(url, json={"decision": "approve"}).status_code == 200
        late = client.post(url, json={"decision": "reject", "feedback": "too late"})
        assert late.status_code == 409 and late.json()["error"]["pending_id"] in (None, IsStr())
        done = wait_for(client, thread["thread_id"], "done")
        again = client.post(url, json={"decision": "approve"})
        assert again.json()["error"] == {
            "code": "not_waiting",
            "message": IsStr(),
            "thread_status": "done",
            "pending_id": None,
            "waiting_for": None,
        }
        assert [e["type"] for e in done["events"]].count("approval") == 1


def test_approving_needs_the_approve_scope_and_writes_nothing_without_it(serve: Serve) -> None:
    with serve([deploy_bot(), asker()]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        writer = {"Authorization": f"Bearer {WRITER}"}
        url = f"/v1/threads/{thread['thread_id']}/approvals/{thread['pending']['id']}"
        refused = client.post(url, json={"decision": "approve"}, headers=writer)
        assert refused.status_code == 403 and "'approve' scope" in refused.json()["error"]["message"]
        question = wait_for(client, launch(client, "asker"), "waiting_human")
        answer = f"/v1/threads/{question['thread_id']}/responses/{question['pending']['id']}"
        assert client.post(answer, json={"text": "prod"}, headers=writer).status_code == 403
        assert len(client.get(f"/v1/threads/{thread['thread_id']}").json()["events"]) == 2
        assert len(client.get(f"/v1/threads/{question['thread_id']}").json()["events"]) == 2


def test_an_answer_by_choice_must_be_one_of_the_choices(serve: Serve) -> None:
    with serve([asker()]) as client:
        thread = wait_for(client, launch(client, "asker"), "waiting_human")
        assert thread["pending"]["data"]["choices"] == ["staging", "production"]
        url = f"/v1/threads/{thread['thread_id']}/responses/{thread['pending']['id']}"
        other = client.post(url, json={"choice": "moon"})
        assert other.status_code == 422 and other.json()["error"] == {
            "code": "not_a_choice",
            "message": "'moon' is none of the request's choices: 'staging', 'production'",
        }
        free = client.post(url, json={"text": "the moon"})  # a multiple-choice request wants one of them
        assert free.status_code == 422
        both = client.post(url, json={"text": "staging", "choice": "staging"})
        assert both.status_code == 422 and "either `text` or `choice`" in both.json()["error"]["message"]
        assert client.post(url, json={}).status_code == 422
        assert client.post(url, json={"choice": "Production"}).status_code == 422  # a choice is spelled as offered
        chosen = client.post(url, json={"choice": "production"}, headers={"Idempotency-Key": "answer-1"})
        assert chosen.status_code == 200
        repeat = client.post(url, json={"choice": "production"}, headers={"Idempotency-Key": "answer-1"})
        assert repeat.status_code == 200
        done = wait_for(client, thread["thread_id"], "done")
        [response] = [e for e in done["events"] if e["type"] == "human_response"]
        assert response["data"] == {"request_id": thread["pending"]["id"], "text": "production", "by": "key:admin"}


def test_a_choice_for_a_request_without_choices_is_refused(serve: Serve) -> None:
    with serve([asker(FREE)]) as client:
        thread = wait_for(client, launch(client, "asker"), "waiting_human")
        url = f"/v1/threads/{thread['thread_id']}/responses/{thread['pending']['id']}"
        refused = client.post(url, json={"choice": "yes"})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "no_choices"
        assert client.post(url, json={"text": "ship it on Friday"}).status_code == 200
        done = wait_for(client, thread["thread_id"], "done")
        assert done["events"][2]["data"]["text"] == "ship it on Friday"


def test_a_yes_no_request_is_answered_by_the_choice_yes_or_no(serve: Serve) -> None:
    # Its choices are yes / no, as the answer link shows them, though its data lists none.
    with serve([asker(YES_NO)]) as client:
        thread = wait_for(client, launch(client, "asker"), "waiting_human")
        url = f"/v1/threads/{thread['thread_id']}/responses/{thread['pending']['id']}"
        other = client.post(url, json={"choice": "maybe"})
        assert other.status_code == 422 and other.json()["error"] == {
            "code": "not_a_choice",
            "message": "'maybe' is none of the request's choices: 'yes', 'no'",
        }
        assert client.post(url, json={"choice": "yes"}).status_code == 200
        done = wait_for(client, thread["thread_id"], "done")
        assert done["events"][2]["data"]["text"] == "yes"
