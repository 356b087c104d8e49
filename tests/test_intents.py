import asyncio
from typing import Literal

import pytest
from pydantic import BaseModel, JsonValue, SecretStr, TypeAdapter, ValidationError

from threadloom import Agent, Event, Thread, UserError
from threadloom.intents import (
    BUILTIN_INTENTS,
    DoneForNow,
    Intent,
    RequestHumanInput,
    Tool,
    intent_name,
    intent_union,
    tool,
)
from threadloom.models import ScriptedModel


class Issue(BaseModel):
    title: str
    labels: list[str] = []


@tool(policy="approval", idempotent=True)
def create_issue(issue: Issue, team: Literal["core", "infra"] = "core") -> str:
    """Create an issue in the tracker.

    Longer notes for people, not the model.

    Args:
        issue: the issue to create
        team: which team's board,
            continued on a second line
    """
    return f"{team}:{issue.title}"


def test_tool_builds_an_intent_model_from_the_signature_and_docstring() -> None:
    assert isinstance(create_issue, Tool)
    assert (create_issue.name, create_issue.policy, create_issue.idempotent) == ("create_issue", "approval", True)
    assert create_issue.description == "Create an issue in the tracker."
    schema = create_issue.intent.model_json_schema()
    assert schema["properties"]["intent"]["const"] == "create_issue"
    assert schema["properties"]["team"]["description"] == "which team's board, continued on a second line"
    assert schema["required"] == ["issue"]
    assert intent_name(create_issue.intent) == "create_issue"


def test_the_intent_parses_flat_json() -> None:
    value = create_issue.intent.model_validate({"intent": "create_issue", "issue": {"title": "x"}, "reasoning": "!"})
    assert value.model_dump() == {"intent": "create_issue", "issue": {"title": "x", "labels": []}, "team": "core"}


def test_invoke_validates_and_calls_sync_and_async_functions() -> None:
    assert asyncio.run(create_issue.invoke({"issue": {"title": "bug"}, "team": "infra"})) == "infra:bug"

    @tool
    async def ping(host: str) -> str:
        """Ping a host."""
        return f"pong {host}"

    assert asyncio.run(ping.invoke({"host": "db"})) == "pong db"
    assert asyncio.run(ping("direct")) == "pong direct"  # still callable as the function
    with pytest.raises(ValidationError):
        asyncio.run(ping.invoke({}))


def test_an_argument_named_self_can_be_given_to_a_direct_call() -> None:
    # Before: `Tool.__call__`'s own `self` took the keyword, a TypeError ("multiple values").
    @tool
    def whoami(self: str, other: str = "") -> str:
        """Say who."""
        return self + other

    assert whoami(self="me", other="!") == "me!" and whoami("me") == "me"
    assert asyncio.run(whoami.invoke({"self": "me"})) == "me"


def test_secret_arguments_are_found_anywhere_in_the_hint() -> None:
    @tool
    def login(user: str, password: SecretStr, tokens: list[SecretStr] | None = None) -> None:
        """Log in."""

    assert login.secret_fields == {"password", "tokens"}


def test_secret_fields_of_model_arguments_and_secret_bytes_are_found() -> None:
    from pydantic import SecretBytes

    class Pin(BaseModel):
        digits: SecretStr

    class Login(BaseModel):
        user: str
        pin: SecretStr
        backup: Pin | None = None
        friends: list["Login"] = []

    @tool
    def sign_in(login: Login, code: SecretBytes) -> str:
        """Sign in."""
        return "ok"

    assert sign_in.secret_fields == {"pin", "digits", "code"}
    agent = Agent(name="bot", model=ScriptedModel([]), tools=[sign_in])
    call: dict[str, JsonValue] = {
        "intent": "sign_in",
        "arguments": {"login": {"user": "ada", "pin": "993311"}, "code": "opensesame77"},
    }
    text = agent.render(Thread.start("user_input", "sign in").append(Event("tool_call", call)))[-1].content
    assert "993311" not in text and "opensesame77" not in text and "ada" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy": "sometimes"}, "policy must be"),
        ({"name": "Bad Name"}, "snake_case"),
    ],
)
def test_bad_tool_options_are_clear(kwargs: dict[str, str], message: str) -> None:
    def fn() -> None:
        """Do it."""

    with pytest.raises(UserError, match=message):
        tool(**kwargs)(fn)  # pyright: ignore[reportArgumentType]


def test_untyped_and_variadic_parameters_are_refused() -> None:
    def untyped(x) -> None:  # pyright: ignore[reportMissingParameterType, reportUnknownParameterType]
        """Untyped."""

    def variadic(*xs: int) -> None:
        """Variadic."""

    def reserved(intent: str) -> None:
        """Reserved."""

    with pytest.raises(UserError, match="needs a type hint"):
        tool(untyped)  # pyright: ignore[reportUnknownArgumentType]
    with pytest.raises(UserError, match=r"\*args"):
        tool(variadic)
    with pytest.raises(UserError, match="reserved"):
        tool(reserved)


def test_builtin_intents_have_the_upstream_names_and_fields() -> None:
    assert [intent_name(i) for i in BUILTIN_INTENTS] == [
        "done_for_now",
        "request_more_information",
        "request_human_input",
    ]
    request = RequestHumanInput(question="Deploy?")
    assert (request.urgency, request.format, request.choices, request.context) == ("medium", "free_text", [], "")
    with pytest.raises(ValidationError):
        RequestHumanInput(question="x", urgency="urgent")  # pyright: ignore[reportArgumentType]


def test_intent_union_discriminates_on_the_intent_name() -> None:
    union = TypeAdapter(intent_union([create_issue.intent, *BUILTIN_INTENTS]))
    value = union.validate_python({"intent": "done_for_now", "message": "bye"})
    assert isinstance(value, DoneForNow)
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        union.validate_python({"intent": "launch_rockets"})
    assert intent_union([DoneForNow]) is DoneForNow


def test_intent_name_needs_a_literal() -> None:
    class Vague(Intent):
        intent: str = "vague"

    with pytest.raises(UserError, match="needs a field `intent"):
        intent_name(Vague)


class _Plain:
    pass


def test_a_parameter_the_model_cannot_fill_is_refused_at_the_decorator() -> None:
    from collections.abc import Callable

    # Before: a plain class raised pydantic's PydanticSchemaGenerationError naming neither tool nor
    # parameter, and a Callable passed @tool and failed later in Agent(...).
    def lookup(customer: _Plain) -> str:
        """Look up."""
        return ""

    def notify(callback: Callable[[str], None]) -> str:
        """Notify."""
        return ""

    with pytest.raises(UserError, match=r"tool 'lookup': parameter 'customer' is typed _Plain"):
        tool(lookup)
    with pytest.raises(UserError, match=r"tool 'notify': parameter 'callback' is typed"):
        tool(notify)
