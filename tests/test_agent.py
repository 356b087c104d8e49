import json
from typing import Literal

import pytest
from pydantic import SecretStr

from threadloom import Agent, DoneForNow, Event, ParseError, Thread, UserError, tool
from threadloom.context import Context, Message
from threadloom.models import ScriptedModel
from threadloom.prompts import PromptInput


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
    """Deploy a tag."""
    return "ok"


@tool
def login(user: str, api_password: SecretStr) -> str:
    """Log in to the deploy service."""
    return "ok"


def agent(*outputs: str, **options: object) -> Agent:
    return Agent(name="bot", model=ScriptedModel(outputs), tools=[deploy_backend, login], **options)  # pyright: ignore[reportArgumentType]


def test_construction_errors_are_clear() -> None:
    model = ScriptedModel([])
    with pytest.raises(UserError, match="two intents are named 'deploy_backend'"):
        Agent(name="a", model=model, tools=[deploy_backend, deploy_backend])
    with pytest.raises(UserError, match="is not a tool"):
        Agent(name="a", model=model, tools=[print])  # pyright: ignore[reportArgumentType]
    with pytest.raises(UserError, match="at least 1"):
        Agent(name="a", model=model, max_steps=0)
    with pytest.raises(UserError, match="needs a name"):
        Agent(name="", model=model)
    with pytest.raises(UserError, match="async complete"):
        Agent(name="a", model=42)  # pyright: ignore[reportArgumentType]
    with pytest.raises(UserError, match="did you mean 'openai:gpt-4'"):
        Agent(name="a", model="gpt-4")
    with pytest.raises(UserError, match="prefetch 'deploy_backend' needs arguments"):
        Agent(name="a", model=model, prefetch=[deploy_backend])

    @tool(name="done_for_now")
    def clash() -> None:
        """Clash."""

    with pytest.raises(UserError, match="two intents are named 'done_for_now'"):
        Agent(name="a", model=model, tools=[clash])


def test_render_is_the_exact_request_and_lists_every_intent() -> None:
    bot = agent()
    thread = Thread.start("slack_message", {"text": "deploy"})
    messages = bot.render(thread)
    assert [m.role for m in messages] == ["system", "user"]
    system = messages[0].content
    for name in ("deploy_backend", "login", "done_for_now", "request_more_information", "request_human_input"):
        assert f"- {name}:" in system
    assert "(a person approves it before it runs)" in system
    assert messages[1].content.endswith("What is the next step? Answer with one JSON object.")
    assert "deploy" in messages[1].content


async def test_next_step_is_the_only_model_call_and_returns_a_typed_intent() -> None:
    bot = agent('{"intent": "done_for_now", "message": "hi"}')
    thread = Thread.start("user_input", {"text": "hello"})
    intent = await bot.next_step(thread)
    assert intent == DoneForNow(message="hi")
    model = bot.model
    assert isinstance(model, ScriptedModel)
    assert list(model.requests[0].messages) == bot.render(thread)
    assert model.requests[0].intent_names == (
        "deploy_backend",
        "login",
        "done_for_now",
        "request_more_information",
        "request_human_input",
    )
    assert len(thread.events) == 1  # next_step does not change the thread


async def test_next_step_raises_parse_error_for_bad_output() -> None:
    with pytest.raises(ParseError):
        await agent("no idea").next_step(Thread.start("user_input", "x"))


def test_to_event_and_reduce() -> None:
    bot = agent()
    call = bot.to_event(deploy_backend.intent.model_validate({"tag": "v1", "environment": "staging"}))
    assert (call.type, call.data) == (
        "tool_call",
        {"intent": "deploy_backend", "arguments": {"tag": "v1", "environment": "staging"}, "policy": "approval"},
    )
    done = bot.to_event(DoneForNow(message="bye"))
    assert (done.type, done.data) == ("done_for_now", {"message": "bye"})
    thread = Thread.start("user_input", "x")
    after = bot.reduce(thread, call)
    assert len(thread.events) == 1 and after.status == "waiting_approval"


def test_secret_arguments_are_redacted_in_what_the_model_sees() -> None:
    bot = agent()
    call = Event(
        "tool_call", {"intent": "login", "arguments": {"user": "ada", "api_password": "hunter2"}, "policy": "auto"}
    )
    thread = Thread.start("user_input", "x").append(call)
    assert "hunter2" not in "".join(m.content for m in bot.render(thread))


def test_a_custom_prompt_owns_every_token() -> None:
    def prompt(inputs: PromptInput) -> list[Message]:
        return [Message("user", f"{inputs.instructions} | {len(inputs.thread.events)} events | {len(inputs.intents)}")]

    bot = agent(prompt=prompt, instructions="Be brief.")
    assert bot.render(Thread.start("user_input", "x")) == [Message("user", "Be brief. | 1 events | 5")]


def test_context_settings_are_kept_and_secret_keys_added() -> None:
    bot = agent(context=Context(format="yaml"))
    assert bot.context.format == "yaml" and "api_password" in bot.context.secret_keys


async def test_a_cut_off_answer_is_refused_even_when_it_parses() -> None:
    # Before: an answer that hit the output limit was taken whole whenever it happened to parse.
    from threadloom.models import Completion, Usage

    cut = Completion(
        '{"intent": "done_for_now", "message": "Deployed v1"}', "m", usage=Usage(10, 64), stop_reason="length"
    )
    agent = Agent(name="bot", model=ScriptedModel([cut, '{"intent": "done_for_now", "message": "ok"}']))
    thread = await agent.run(Thread.start("user_input", "hi"))
    error = next(e for e in thread.events if e.type == "error")
    assert isinstance(error.data, dict) and "cut off after 64 tokens" in str(error.data["message"])
    last = thread.events[-1]
    assert thread.status == "done" and isinstance(last.data, dict) and last.data["message"] == "ok"


def _after_a_deploy(thread: Thread) -> list[str] | None:
    if any(
        e.type == "tool_response" and isinstance(e.data, dict) and e.data.get("intent") == "deploy"
        for e in thread.events
    ):
        return ["done_for_now", "request_more_information"]
    return None


async def test_offer_narrows_the_intents_per_step_and_refuses_the_rest() -> None:
    ran: list[str] = []

    @tool
    def deploy(tag: str) -> str:
        """Deploy a tag."""
        ran.append(tag)
        return f"deployed {tag}"

    model = ScriptedModel(
        [
            '{"intent": "deploy", "tag": "v2"}',
            '{"intent": "deploy", "tag": "v2"}',  # not offered after the deploy: an error, never run
            '{"intent": "done_for_now", "message": "deployed v2"}',
        ]
    )
    agent = Agent(name="bot", model=model, tools=[deploy], offer=_after_a_deploy)
    thread = await agent.run(Thread.start("user_input", "deploy v2"))
    assert thread.status == "done" and ran == ["v2"]
    error = next(e for e in thread.events if e.type == "error")
    assert isinstance(error.data, dict)
    assert "`deploy` is not available at this step" in str(error.data["message"])
    first, second = model.requests[0], model.requests[1]
    assert "deploy" in first.intent_names and [t.name for t in first.tools][0] == "deploy"
    assert second.intent_names == ("done_for_now", "request_more_information")
    assert [t.name for t in second.tools] == ["done_for_now", "request_more_information"]
    # The schema (and so a local model's grammar) admits only the offered intents.
    assert '"deploy"' in json.dumps(first.output_schema) and '"deploy"' not in json.dumps(second.output_schema)
    assert '"done_for_now"' in json.dumps(second.output_schema)
    assert "Deploy a tag." in first.messages[0].content and "Deploy a tag." not in second.messages[0].content


def test_offer_naming_an_unknown_intent_is_a_user_error() -> None:
    agent = Agent(name="bot", model=ScriptedModel([]), offer=lambda thread: ["deploy"])
    with pytest.raises(UserError, match=r"offer\(\) named \['deploy'\]"):
        agent.render(Thread.start("user_input", "hi"))


async def test_a_secret_argument_reaches_the_tool_as_the_model_wrote_it() -> None:
    # Before: the call was recorded with pydantic's JSON dump, which writes a SecretStr as
    # "**********", so the tool ran on the mask.
    got: list[str] = []

    @tool
    def rotate(user: str, api_password: SecretStr, pins: list[SecretStr]) -> str:
        """Rotate a password."""
        got.extend([api_password.get_secret_value(), *(p.get_secret_value() for p in pins)])
        return "rotated"

    call = '{"intent": "rotate", "user": "ada", "api_password": "hunter2", "pins": ["1234"]}'
    bot = Agent(name="bot", model=ScriptedModel([call, '{"intent": "done_for_now", "message": "ok"}']), tools=[rotate])
    thread = await bot.run(Thread.start("user_input", "rotate it"))
    assert thread.status == "done" and got == ["hunter2", "1234"]
    rendered = "".join(m.content for m in bot.render(thread))
    assert "hunter2" not in rendered  # the log holds it; what the model sees does not
