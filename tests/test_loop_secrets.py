"""The loop's error events keep a call's secrets out, whatever failed and however the agent redacts."""

from __future__ import annotations

from pydantic import BaseModel, JsonValue, SecretStr, field_serializer

from threadloom import Agent, Thread, tool
from threadloom.context import Context
from threadloom.models import ScriptedModel

KEY = "sk-live-abcdef"
DONE = '{"intent": "done_for_now", "message": "k"}'


def _start() -> Thread:
    return Thread.start("user_input", {"text": "go"})


def _messages(thread: Thread) -> list[str]:
    return [str(e.data["message"]) for e in thread.events if e.type == "error" and isinstance(e.data, dict)]


class Session(BaseModel):
    """A result whose serializer quotes the key it refuses to show."""

    key: str

    @field_serializer("key")
    def _refuse(self, key: str) -> str:
        raise ValueError(f"will not print {key}")


async def test_a_result_that_is_not_json_is_recorded_without_the_secret_argument_it_quotes() -> None:
    @tool
    def open_session(api_key: SecretStr) -> Session:
        """Open a session."""
        return Session(key=api_key.get_secret_value())

    model = ScriptedModel([f'{{"intent": "open_session", "api_key": "{KEY}"}}', DONE])
    thread = await Agent(name="bot", model=model, tools=[open_session]).run(_start())
    # Before: the ResultNotJSON message kept pydantic's text, which quoted the serializer's error and the key.
    [message] = _messages(thread)
    assert message.startswith("the result cannot be turned into JSON") and "will not print" in message
    assert KEY not in message


async def test_a_result_no_store_can_hold_is_recorded_without_its_secrets() -> None:
    @tool
    def fetch(url: str, token: str) -> JsonValue:
        """Fetch a page; the result holds a lone surrogate, which UTF-8 cannot hold."""
        if url == "echo":
            return f"page for {token} \ud800"  # the secret argument, quoted in unstorable text
        return {"page": "ok", "api_key": KEY + "\ud800"}  # a secret under its key, itself unstorable

    call = '{"intent": "fetch", "url": "%s", "token": "tok-987654"}'
    model = ScriptedModel([call % "echo", call % "keyed", DONE])
    thread = await Agent(name="bot", model=model, tools=[fetch]).run(_start())
    # Before: the ResultNotStorable message quoted the offending text's head, the token or the key in it.
    messages = _messages(thread)
    assert len(messages) == 2 and all(m.startswith("the result cannot be stored") for m in messages)
    assert "tok-987654" not in messages[0] and "lone surrogate" in messages[0]
    assert messages[1] == "the result cannot be stored: a secret value in it is no JSON a store can hold"
    assert Thread.from_json(thread.to_json()) == thread


async def test_a_tool_error_is_scrubbed_by_the_agents_own_secret_pattern_and_keys() -> None:
    @tool
    def unlock(door: str, pin: str, passcode: str) -> str:
        """Unlock a door."""
        raise PermissionError(f"pin {pin} and code {passcode} rejected for {door}")

    call = '{"intent": "unlock", "door": "front", "pin": "493817", "passcode": "open-sesame-1"}'
    context = Context(redact=r"pin|password", secret_keys=frozenset({"passcode"}))
    agent = Agent(name="bot", model=ScriptedModel([call, DONE]), tools=[unlock], context=context)
    thread = await agent.run(_start())
    # Before: the loop judged secret arguments by the default pattern and the tool's SecretStr fields
    # only, so `pin` and `passcode`, secret to this agent's context, stayed in the stored error.
    [message] = _messages(thread)
    assert message == "PermissionError: pin [REDACTED] and code [REDACTED] rejected for front"


async def test_a_tool_error_is_still_scrubbed_by_the_default_pattern_under_a_custom_one() -> None:
    @tool
    def call_api(api_key: str, pin: str) -> str:
        """Call an API."""
        raise PermissionError(f"key {api_key} with pin {pin} rejected")

    call = f'{{"intent": "call_api", "api_key": "{KEY}", "pin": "493817"}}'
    agent = Agent(name="bot", model=ScriptedModel([call, DONE]), tools=[call_api], context=Context(redact="pin"))
    [message] = _messages(await agent.run(_start()))
    assert message == "PermissionError: key [REDACTED] with pin [REDACTED] rejected"


async def test_the_outcome_unknown_question_hides_arguments_secret_to_the_agent() -> None:
    from threadloom import Event

    @tool
    def unlock(door: str, pin: str) -> str:
        """Unlock a door."""
        return "open"

    call = Event("tool_call", {"intent": "unlock", "arguments": {"door": "front", "pin": "493817"}, "policy": "auto"})
    started = Event("tool_started", {"call_id": call.id, "intent": "unlock", "idempotency_key": call.id})
    thread = _start().append(call).append(started)  # a crash between the start and the result
    agent = Agent(name="bot", model=ScriptedModel([]), tools=[unlock], context=Context(redact="pin"))
    thread = await agent.run(thread)
    # Before: the question's arguments were redacted by the default pattern only, and kept the pin.
    assert thread.pending is not None and isinstance(thread.pending.data, dict)
    assert str(thread.pending.data["context"]).endswith('unlock({"door": "front", "pin": "[REDACTED]"})')
