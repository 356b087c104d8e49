"""`GET /v1/threads/{id}/context`: the messages the model got at each step, rendered again, with tokens."""

from __future__ import annotations

from typing import cast

from bots import deploy_bot, launch, wait_for
from serving import Serve

from threadloom import Thread
from threadloom.models import ScriptedModel
from threadloom.tokens import count_messages, counter_for_model


def test_each_model_step_shows_exactly_the_messages_the_model_got(serve: Serve) -> None:
    agent = deploy_bot()
    with serve([agent]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        client.post(
            f"/v1/threads/{thread['thread_id']}/approvals/{thread['pending']['id']}", json={"decision": "approve"}
        )
        done = wait_for(client, thread["thread_id"], "done")
        context = client.get(f"/v1/threads/{thread['thread_id']}/context")
        assert context.status_code == 200
        body = context.json()
    model = cast(ScriptedModel, agent.model)
    assert (body["thread_id"], body["agent"]) == (thread["thread_id"], "deploy_bot")
    assert [s["event_id"] for s in body["steps"]] == [
        e["id"] for e in done["events"] if e["type"] in ("tool_call", "done_for_now")
    ]
    assert len(body["steps"]) == len(model.requests) == 2
    counter = counter_for_model("scripted")
    for step, request in zip(body["steps"], model.requests, strict=True):
        got = [(m.role, m.content, m.tool_call_id) for m in request.messages]
        assert [(m["role"], m["content"], m["tool_call_id"]) for m in step["messages"]] == got
        assert [m["tokens"] for m in step["messages"]] == [count_messages([m], counter) for m in request.messages]
        assert step["tokens"] == count_messages(request.messages, counter)
        assert (step["model"], step["counter"], step["exact"]) == ("scripted", counter.name, counter.exact)
        assert step["hooked"] is False and step["error"] is None


def test_an_agent_with_before_model_says_its_steps_may_differ(serve: Serve) -> None:
    agent = deploy_bot()

    def unchanged(thread: Thread) -> Thread:
        return thread  # a hook may show the model another thread; this one shows the same

    agent.before_model = unchanged
    with serve([agent]) as client:
        thread = wait_for(client, launch(client), "waiting_approval")
        [step] = client.get(f"/v1/threads/{thread['thread_id']}/context").json()["steps"]
        assert step["hooked"] is True and step["messages"]


def test_a_thread_of_an_agent_this_server_does_not_run_is_a_409(serve: Serve) -> None:
    with serve() as client:
        thread_id = launch(client, "ghost")
        answer = client.get(f"/v1/threads/{thread_id}/context")
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "agent_not_served"


def test_a_thread_without_model_steps_has_no_steps(serve: Serve) -> None:
    with serve([deploy_bot()], worker=False) as client:
        thread_id = launch(client)
        assert client.get(f"/v1/threads/{thread_id}/context").json()["steps"] == []
