"""The loop's stories: every stop, every limit, every failure, driven by ScriptedModel."""

from collections.abc import Iterable
from typing import Literal

import pytest

from threadloom import Agent, Event, Thread, ToolRetry, tool
from threadloom.exceptions import ModelError
from threadloom.models import ScriptedModel
from threadloom.models.base import Completion, ModelRequest

DONE = '{"intent": "done_for_now", "message": "all done"}'
DEPLOY = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'

deploys: list[tuple[str, str]] = []


@tool
def list_git_tags() -> list[str]:
    """List recent tags."""
    return ["v1.2.3", "v1.2.2"]


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
    """Deploy a tag."""
    deploys.append((tag, environment))
    return f"deployed {tag} to {environment}"


@tool
def flaky(host: str) -> str:
    """Always fails."""
    raise ConnectionRefusedError(f"connection refused on {host}:8080\nTraceback (most recent call last): ...")


def make_agent(*outputs: str, **options: object) -> tuple[Agent, ScriptedModel]:
    model = ScriptedModel(outputs)
    agent = Agent(name="bot", model=model, tools=[list_git_tags, deploy_backend, flaky], **options)  # pyright: ignore[reportArgumentType]
    return agent, model


def start() -> Thread:
    return Thread.start("slack_message", {"text": "deploy the backend to production"})


def types(thread: Thread) -> list[str]:
    return [e.type for e in thread.events]


@pytest.fixture(autouse=True)
def _clear_deploys() -> None:
    deploys.clear()


async def test_auto_tools_run_and_the_loop_continues_to_done() -> None:
    agent, model = make_agent('{"intent": "list_git_tags"}', DONE)
    thread = await agent.run(start())
    assert types(thread) == ["slack_message", "tool_call", "tool_started", "tool_response", "done_for_now"]
    call_id = thread.events[1].id
    assert thread.events[2].data == {"call_id": call_id, "intent": "list_git_tags", "idempotency_key": call_id}
    assert thread.events[3].data == {"call_id": call_id, "intent": "list_git_tags", "result": ["v1.2.3", "v1.2.2"]}
    assert thread.status == "done" and model.remaining == 0
    assert "v1.2.2" in model.requests[1].messages[-1].content  # the result reached the model


async def test_approval_tools_stop_before_running_and_run_once_when_approved() -> None:
    agent, model = make_agent(DEPLOY, DONE)
    thread = await agent.run(start())
    assert thread.status == "waiting_approval" and deploys == []
    assert thread.pending is not None and thread.pending.data == {
        "intent": "deploy_backend",
        "arguments": {"tag": "v1.2.3", "environment": "production"},
        "policy": "approval",
        "model": {
            "name": "scripted",
            "input_tokens": 0,
            "output_tokens": 0,
            "cached_tokens": 0,
            "latency_ms": 0.0,
            "strategy": "prompted",
            "stop_reason": None,
        },
    }
    again = await agent.run(thread)  # running a waiting thread does nothing
    assert again == thread and len(model.requests) == 1
    thread = await agent.run(thread.approve(thread.pending.id, edits={"environment": "staging"}))
    assert deploys == [("v1.2.3", "staging")]
    assert types(thread)[-4:] == ["approval", "tool_started", "tool_response", "done_for_now"]
    assert thread.status == "done"


async def test_a_rejection_goes_back_to_the_model_and_nothing_runs() -> None:
    agent, model = make_agent(DEPLOY, DONE)
    thread = await agent.run(start())
    assert thread.pending is not None
    thread = await agent.run(thread.reject(thread.pending.id, "use staging first"))
    assert deploys == [] and thread.status == "done"
    assert "use staging first" in model.requests[1].messages[-1].content


async def test_invalid_edits_become_an_error_for_the_model() -> None:
    agent, _ = make_agent(DEPLOY, DONE)
    thread = await agent.run(start())
    assert thread.pending is not None
    call_id = thread.pending.id
    thread = await agent.run(thread.approve(call_id, edits={"environment": "moon"}))
    error = next(e for e in thread.events if e.type == "error")
    assert error.data == {
        "source": "tool",
        "intent": "deploy_backend",
        "call_id": call_id,
        "error_type": "ValidationError",
        "message": "invalid arguments: environment: Input should be 'staging' or 'production'",
    }
    assert deploys == []


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ('{"intent": "request_human_input", "question": "Which tag?", "urgency": "high"}', "Which tag?"),
        ('{"intent": "request_more_information", "message": "Which environment?"}', "Which environment?"),
    ],
)
async def test_asking_a_person_waits_and_an_answer_resumes(output: str, reason: str) -> None:
    agent, model = make_agent(output, DONE)
    thread = await agent.run(start())
    assert thread.status == "waiting_human" and thread.waiting_reason == reason
    assert thread.pending is not None
    thread = await agent.run(thread.respond(thread.pending.id, "v1.2.2 please"))
    assert thread.status == "done" and "v1.2.2 please" in model.requests[1].messages[-1].content


async def test_a_failing_tool_becomes_compact_errors_then_a_person_is_asked() -> None:
    call = '{"intent": "flaky", "host": "db"}'
    agent, model = make_agent(call, call, call)
    thread = await agent.run(start())
    errors = [e for e in thread.events if e.type == "error"]
    assert len(errors) == 3 and model.remaining == 0
    assert errors[0].data == {
        "source": "tool",
        "intent": "flaky",
        "call_id": thread.events[1].id,
        "error_type": "ConnectionRefusedError",
        "message": "ConnectionRefusedError: connection refused on db:8080",
    }
    assert all("Traceback" not in str(e.data) for e in thread.events)
    assert thread.status == "waiting_human" and thread.pending is not None
    assert thread.pending.data == {
        "question": "`flaky` failed 3 times in a row. How should I proceed?",
        "context": "\n".join(["- ConnectionRefusedError: connection refused on db:8080"] * 3),
        "urgency": "high",
        "format": "free_text",
        "choices": [],
        "reason": "tool_errors",
    }
    assert thread.consecutive_errors == {"flaky": 3}


async def test_errors_are_counted_per_tool_consecutively() -> None:
    call = '{"intent": "flaky", "host": "db"}'
    # Another tool's success in between does not reset flaky's count: the third failure escalates.
    agent, model = make_agent(call, call, '{"intent": "list_git_tags"}', call, DONE)
    thread = await agent.run(start())
    assert thread.status == "waiting_human" and model.remaining == 1
    assert types(thread).count("error") == 3 and thread.consecutive_errors == {"flaky": 3}


async def test_a_success_resets_the_tool_count() -> None:
    attempts: list[int] = []

    @tool
    def wobbly() -> str:
        """Fails twice, then works."""
        attempts.append(1)
        if len(attempts) % 3:
            raise TimeoutError("deploy service timed out")
        return "ok"

    call = '{"intent": "wobbly"}'
    model = ScriptedModel([call] * 6 + [DONE])
    thread = await Agent(name="a", model=model, tools=[wobbly]).run(start())
    assert thread.status == "done" and types(thread).count("error") == 4 and thread.consecutive_errors == {}


async def test_tool_retry_tells_the_model_what_to_change() -> None:
    @tool
    def lookup(customer: str) -> str:
        """Find a customer."""
        raise ToolRetry(f"no customer {customer!r}; search by email instead")

    model = ScriptedModel(['{"intent": "lookup", "customer": "terri"}', DONE])
    thread = await Agent(name="a", model=model, tools=[lookup]).run(start())
    assert thread.events[3].data["message"] == "no customer 'terri'; search by email instead"  # pyright: ignore[reportArgumentType, reportCallIssue, reportIndexIssue, reportOptionalSubscript]
    assert "search by email instead" in model.requests[1].messages[-1].content


async def test_garbage_from_the_model_is_fed_back_then_escalated() -> None:
    agent, model = make_agent(*["I think we should deploy!"] * 10)
    thread = await agent.run(start())
    assert len(model.requests) == 3 and thread.status == "waiting_human"
    errors = [e for e in thread.events if e.type == "error"]
    assert [e.data["source"] for e in errors] == ["model"] * 3  # pyright: ignore[reportArgumentType, reportCallIssue, reportIndexIssue, reportOptionalSubscript]
    assert errors[0].data["output"] == "I think we should deploy!"  # pyright: ignore[reportArgumentType, reportCallIssue, reportIndexIssue, reportOptionalSubscript]
    assert thread.pending is not None and thread.pending.data["reason"] == "model_errors"  # pyright: ignore[reportArgumentType, reportCallIssue, reportIndexIssue, reportOptionalSubscript]
    # The second request showed the model what was wrong with the first answer.
    first_error = errors[0].data
    assert isinstance(first_error, dict)
    assert str(first_error["message"]) in "\n".join(m.content for m in model.requests[1].messages)


async def test_an_unknown_intent_is_an_error_and_the_model_is_asked_again() -> None:
    agent, _ = make_agent('{"intent": "launch_rockets"}', DONE)
    thread = await agent.run(start())
    assert types(thread) == ["slack_message", "error", "done_for_now"]
    assert "launch_rockets" in str(thread.events[1].data)


async def test_max_steps_stops_with_a_clear_reason() -> None:
    agent, model = make_agent(*['{"intent": "list_git_tags"}'] * 5, max_steps=2)
    thread = await agent.run(start())
    assert len(model.requests) == 2 and thread.status == "waiting_human"
    assert thread.waiting_reason == "I took 2 steps (the limit is max_steps=2) without finishing. Should I continue?"


async def test_prefetch_runs_once_before_the_model_and_is_not_a_choice() -> None:
    model = ScriptedModel([DEPLOY, DONE])
    agent = Agent(name="bot", model=model, tools=[deploy_backend], prefetch=[list_git_tags])
    thread = await agent.run(start())
    assert types(thread) == ["slack_message", "tool_call", "tool_started", "tool_response", "tool_call"]
    assert thread.events[1].data == {"intent": "list_git_tags", "arguments": {}, "policy": "auto", "prefetch": True}
    first_request = model.requests[0]
    assert "v1.2.3" in first_request.messages[-1].content
    assert "list_git_tags" not in first_request.intent_names
    assert thread.pending is not None
    thread = await agent.run(thread.approve(thread.pending.id))
    assert types(thread).count("tool_call") == 2  # not fetched again


async def test_hooks_see_every_step_and_can_compact_what_the_model_sees() -> None:
    seen: list[str] = []

    def before_model(thread: Thread) -> Thread:
        return Thread(thread.events[-1:], thread_id=thread.id)  # show only the newest event

    async def after_step(thread: Thread, event: Event) -> Iterable[Event]:
        seen.append(event.type)
        return [Event("judge_verdict", {"ok": True})] if event.type == "tool_response" else []

    agent, model = make_agent('{"intent": "list_git_tags"}', DONE, before_model=before_model, after_step=after_step)
    thread = await agent.run(start())
    assert seen == ["tool_call", "tool_started", "tool_response", "done_for_now"]
    assert types(thread) == [
        "slack_message", "tool_call", "tool_started", "tool_response", "judge_verdict", "done_for_now"
    ]  # fmt: skip
    assert "slack_message" not in model.requests[1].messages[-1].content
    assert "judge_verdict" in model.requests[1].messages[-1].content


class DownModel:
    name = "down"

    async def complete(self, request: ModelRequest) -> Completion:
        raise ModelError("provider unavailable: 503")


async def test_a_model_that_cannot_answer_stops_the_run_with_an_error_event() -> None:
    thread = await Agent(name="a", model=DownModel()).run(start())
    assert thread.status == "ready" and thread.events[-1].data == {
        "source": "model",
        "error_type": "ModelError",
        "message": "ModelError: provider unavailable: 503",
    }


async def test_a_script_that_runs_out_says_so_in_the_thread() -> None:
    agent, _ = make_agent('{"intent": "list_git_tags"}')
    thread = await agent.run(start())
    assert thread.events[-1].data["error_type"] == "ScriptExhausted"  # pyright: ignore[reportArgumentType, reportCallIssue, reportIndexIssue, reportOptionalSubscript]
    assert "asked for output 2 but the script has 1" in str(thread.events[-1].data)


async def test_run_sync_refuses_to_run_inside_an_event_loop() -> None:
    agent, _ = make_agent(DONE)
    with pytest.raises(Exception, match="use `await agent.run"):
        agent.run_sync(start())


def test_run_sync_runs_to_the_same_result() -> None:
    agent, _ = make_agent(DONE)
    assert agent.run_sync(start()).status == "done"


POISON = "ok" + chr(0xD800)


@tool(idempotent=True)
def fetch_page(url: str) -> str:
    """Fetch a page that decodes to a lone surrogate."""
    return POISON


async def test_a_result_no_store_can_hold_is_a_compact_error_and_the_run_escalates() -> None:
    # Before: the result entered the thread and the store's json.dumps raised, so a worker re-ran it forever.
    call = '{"intent": "fetch_page", "url": "https://example.com"}'
    agent = Agent(name="bot", model=ScriptedModel([call] * 3), tools=[fetch_page])
    thread = await agent.run(start())
    errors = [e.data for e in thread.events if e.type == "error" and isinstance(e.data, dict)]
    assert [e["error_type"] for e in errors] == ["ResultNotStorable"] * 3
    assert "lone surrogate" in str(errors[0]["message"])
    assert thread.status == "waiting_human" and "failed 3 times" in (thread.waiting_reason or "")
    assert Thread.from_json(thread.to_json()) == thread  # every event is storable


async def test_a_model_answer_no_store_can_hold_is_a_model_error_then_escalated() -> None:
    # Before: the JSON escape "\ud800" parsed into a lone surrogate and a worker asked the model 1,545 times in 5 s.
    answer = '{"intent": "done_for_now", "message": "ok \\ud800"}'
    agent, model = make_agent(answer, answer, answer)
    thread = await agent.run(start())
    errors = [e.data for e in thread.events if e.type == "error" and isinstance(e.data, dict)]
    assert len(errors) == 3 and all("cannot be stored" in str(e["message"]) for e in errors)
    assert thread.status == "waiting_human" and model.remaining == 0
    assert Thread.from_json(thread.to_json()) == thread


def test_an_error_is_redacted_before_it_is_cut_to_length() -> None:
    from threadloom.loop import format_error

    # The DSN straddles the 300-character cut: cut first, its `@` was gone and the password stayed.
    error = ConnectionError("could not connect " + "x" * 265 + " postgresql://app:hunter2hunter2@db/prod")
    text = format_error(error)
    assert "hunter2" not in text and len(text) <= 300
    assert format_error(ConnectionError("to postgresql://app:pw-123456@db/prod")) == (
        "ConnectionError: to postgresql://app:[REDACTED]@db/prod"
    )


async def test_the_outcome_unknown_question_keeps_secrets_out() -> None:
    from pydantic import SecretStr

    @tool
    def charge(customer: str, api_key: SecretStr, token: str) -> str:
        """Charge a customer."""
        return "charged"

    call = Event(
        "tool_call",
        {"intent": "charge", "arguments": {"customer": "c1", "api_key": "sk-live-1", "token": "t-9"}, "policy": "auto"},
    )
    started = Event("tool_started", {"call_id": call.id, "intent": "charge", "idempotency_key": call.id})
    thread = start().append(call).append(started)  # a crash between the start and the result
    agent = Agent(name="bot", model=ScriptedModel([]), tools=[charge])
    thread = await agent.run(thread)
    assert thread.status == "waiting_human"
    # Before: the question quoted the arguments as JSON, api_key and token included, and a question's
    # text is free text where no renderer can tell a secret by its key.
    assert thread.pending is not None and isinstance(thread.pending.data, dict)
    question = str(thread.pending.data["context"])
    assert "sk-live-1" not in question and "t-9" not in question and '"customer": "c1"' in question
    rendered = "".join(m.content for m in agent.render(thread))
    assert "sk-live-1" not in rendered and "t-9" not in rendered


async def test_a_tool_error_quoting_a_secret_argument_is_recorded_without_it() -> None:
    from pydantic import SecretStr

    @tool
    def login(user: str, api_key: SecretStr, token: str) -> str:
        """Log in."""
        if user == "retry":
            raise ToolRetry(f"token {token} expired")
        raise PermissionError("x" * 270 + f" key {api_key.get_secret_value()} rejected")  # the key straddles the cut

    call = '{"intent": "login", "user": "%s", "api_key": "sk-live-abcdef", "token": "tok-987654"}'
    model = ScriptedModel([call % "ada", call % "retry", '{"intent": "done_for_now", "message": "k"}'])
    thread = await Agent(name="bot", model=model, tools=[login]).run(start())
    # Before: the error event kept the exception's text as raised, so every reader of the thread saw the key.
    messages = [str(e.data["message"]) for e in thread.events if e.type == "error" and isinstance(e.data, dict)]
    assert "sk-live" not in messages[0] and messages[0].startswith("PermissionError: xxx")
    assert messages[1] == "token [REDACTED] expired"
