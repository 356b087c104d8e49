"""AnthropicModel against a real HTTP server on 127.0.0.1 that answers in the Messages API's shapes."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal, cast

import anthropic
import pytest
from http_script import Reply, ScriptedServer, serving
from pydantic import TypeAdapter

from threadloom import (
    Agent,
    ContextWindowExceeded,
    DoneForNow,
    ModelHTTPError,
    ModelTimeout,
    ParseError,
    ProviderError,
    RateLimited,
    Refused,
    Thread,
    UserError,
    parse,
    tool,
)
from threadloom.context import Message, ToolCall
from threadloom.models import (
    Completion,
    FallbackModel,
    Model,
    ModelRequest,
    ModelSettings,
    ScriptedModel,
    ToolDefinition,
    Usage,
)
from threadloom.models.anthropic import AnthropicModel

Json = dict[str, Any]


class MessagesServer(ScriptedServer):
    """A Messages API on 127.0.0.1: answers from a script of replies and records what it received."""

    def __init__(self) -> None:
        super().__init__(Reply(error("api_error", "no reply"), 500))


@pytest.fixture
def server() -> Iterator[MessagesServer]:
    with serving(MessagesServer()) as fake:
        yield fake


MakeModel = Callable[..., AnthropicModel]


@pytest.fixture
async def make_model(server: MessagesServer) -> AsyncIterator[MakeModel]:
    made: list[AnthropicModel] = []

    def make(**options: Any) -> AnthropicModel:
        options = {"api_key": "test-key", "base_url": server.url, "max_retries": 0, **options}
        model = AnthropicModel(options.pop("model", "claude-test-1"), **options)
        made.append(model)
        return model

    yield make
    for model in made:
        await model.aclose()


# -- the Messages API's documented shapes ---------------------------------------------------------


def message(
    *content: Json,
    stop_reason: str = "end_turn",
    usage: Json | None = None,
    model: str = "claude-test-1-20261101",
) -> Json:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 25, "output_tokens": 9},
    }


def text(value: str) -> Json:
    return {"type": "text", "text": value}


def tool_use(name: str, arguments: Json, call_id: str = "toolu_01A09q90qw90lq917835lq9") -> Json:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def error(kind: str, text: str) -> Json:
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


FAST_RETRY = {"retry-after-ms": "1", "retry-after": "0.001"}

DEPLOY = ToolDefinition(
    name="deploy",
    description="Deploy a tag to an environment.",
    parameters={
        "type": "object",
        "properties": {"tag": {"type": "string"}, "environment": {"enum": ["staging", "production"]}},
        "required": ["tag", "environment"],
    },
)
DONE = ToolDefinition(
    name="done_for_now",
    description="Finish.",
    parameters={"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
)


@tool
def deploy(tag: str, environment: Literal["staging", "production"]) -> str:
    """Deploy a tag to an environment."""
    return f"deployed {tag} to {environment}"


# An agent only for its intent union: the type answers parse into, and that type's JSON Schema.
INTENTS = Agent(name="deploy_bot", model=ScriptedModel([]), tools=[deploy]).intent_type
SCHEMA: Json = TypeAdapter(INTENTS).json_schema()


def request(*messages: Message, settings: ModelSettings | None = None, schema: Json | None = None) -> ModelRequest:
    return ModelRequest(
        messages=messages or (Message("system", "You deploy."), Message("user", "deploy v1.2.3 to staging")),
        output_schema=schema or {},
        intent_names=("deploy", "done_for_now"),
        tools=(DEPLOY, DONE),
        settings=settings or ModelSettings(),
    )


# -- strategies -----------------------------------------------------------------------------------


async def test_tools_a_tool_call_comes_back_as_the_flat_intent(server: MessagesServer, make_model: MakeModel) -> None:
    usage = {
        "input_tokens": 12,
        "output_tokens": 30,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 900,
    }
    server.reply(
        message(tool_use("deploy", {"tag": "v1.2.3", "environment": "staging"}), stop_reason="tool_use", usage=usage)
    )
    model = make_model()
    assert isinstance(model, Model) and model.name == "claude-test-1"

    completion = await model.complete(request())

    assert completion == Completion(
        text='{"intent": "deploy", "tag": "v1.2.3", "environment": "staging"}',
        model="claude-test-1-20261101",
        usage=Usage(input_tokens=1012, output_tokens=30, cached_tokens=900),
        latency_ms=completion.latency_ms,
        stop_reason="tool_use",
        strategy="tools",
    )
    assert completion.latency_ms > 0
    assert parse(completion.text, INTENTS).model_dump() == {
        "intent": "deploy",
        "tag": "v1.2.3",
        "environment": "staging",
    }


async def test_tools_what_goes_out_on_the_wire(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(message(tool_use("done_for_now", {"message": "ok"})))
    await make_model().complete(request())

    [received] = server.received
    assert received.path == "/v1/messages" and received.headers["authorization"] == "Bearer test-key"
    assert received.body == {
        "model": "claude-test-1",
        "max_tokens": 4096,
        "system": [{"type": "text", "text": "You deploy.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "deploy v1.2.3 to staging"}]}],
        "tools": [
            {
                "name": "deploy",
                "description": "Deploy a tag to an environment.",
                "input_schema": dict(DEPLOY.parameters),
            },
            {
                "name": "done_for_now",
                "description": "Finish.",
                "input_schema": dict(DONE.parameters),
                "cache_control": {"type": "ephemeral"},  # the stable prefix ends with the last tool
            },
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    }


async def test_without_prompt_caching_nothing_is_marked(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(message(tool_use("done_for_now", {"message": "ok"})))
    await make_model(cache_prompt=False).complete(request())
    assert "cache_control" not in json.dumps(server.last)


async def test_several_tool_calls_are_a_parse_error_for_the_model(
    server: MessagesServer, make_model: MakeModel
) -> None:
    calls = (
        tool_use("deploy", {"tag": "v1", "environment": "staging"}, "toolu_1"),
        tool_use("done_for_now", {"message": "x"}, "toolu_2"),
    )
    server.reply(message(*calls, stop_reason="tool_use"))
    with pytest.raises(
        ParseError, match=r"^answer by calling exactly one tool; your answer called 2 \(deploy, done_for_now\)$"
    ) as info:
        await make_model().complete(request())
    assert info.value.text.splitlines()[1] == '{"intent": "done_for_now", "message": "x"}'


async def test_prose_instead_of_a_call_is_a_parse_error(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(message(text("I would deploy v1.2.3.")))
    with pytest.raises(ParseError, match="called none") as info:
        await make_model().complete(request())
    assert info.value.text == "I would deploy v1.2.3."


async def test_tools_needs_tool_definitions(server: MessagesServer, make_model: MakeModel) -> None:
    bare = ModelRequest(messages=(Message("user", "hi"),), output_schema=SCHEMA, intent_names=("deploy",))
    with pytest.raises(UserError, match="strategy='tools' but the request has no tool definitions"):
        await make_model().complete(bare)
    assert server.received == []


async def test_json_schema_constrains_the_answer_to_the_union(server: MessagesServer, make_model: MakeModel) -> None:
    answer = '{"intent": "deploy", "tag": "v2", "environment": "production"}'
    server.reply(message(text(answer)))
    completion = await make_model(strategy="json_schema").complete(request(schema=SCHEMA))

    assert (completion.text, completion.strategy) == (answer, "json_schema")
    body = server.last
    assert "tools" not in body and "tool_choice" not in body
    sent = body["output_config"]["format"]
    assert sent["type"] == "json_schema"
    variants = sent["schema"]["$defs"]
    assert set(variants) >= {"Deploy", "DoneForNow", "RequestHumanInput"}
    for variant in variants.values():  # every variant names its intent, and nothing else may appear
        assert variant["required"][0] == "intent" and variant["additionalProperties"] is False
    assert variants["Deploy"]["properties"]["environment"]["enum"] == ["staging", "production"]


async def test_prompted_is_plain_text_read_by_the_tolerant_parser(
    server: MessagesServer, make_model: MakeModel
) -> None:
    server.reply(message(text('Sure! {"intent": "done_for_now", "message": "nothing to do"} Hope that helps.')))
    completion = await make_model(strategy="prompted").complete(request())
    assert parse(completion.text, INTENTS) == DoneForNow(message="nothing to do")
    assert completion.strategy == "prompted" and completion.stop_reason == "end_turn"
    assert {"tools", "tool_choice", "output_config"}.isdisjoint(server.last)


async def test_requests_go_through_the_given_http_client(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(message(text("{}")))
    client = anthropic.DefaultAsyncHttpxClient(headers={"x-gateway-route": "team-a"})
    await make_model(strategy="prompted", http_client=client).complete(request())
    assert server.received[0].headers["x-gateway-route"] == "team-a"


def bad_strategy() -> None:
    AnthropicModel("claude-test-1", api_key="k", strategy="grammar")  # pyright: ignore[reportArgumentType]


def test_misuse_is_refused_up_front() -> None:
    with pytest.raises(UserError, match="strategy must be one of"):
        bad_strategy()
    with pytest.raises(UserError, match="max_retries must be 0 or more"):
        AnthropicModel("claude-test-1", api_key="k", max_retries=-1)


async def test_json_schema_needs_a_schema(server: MessagesServer, make_model: MakeModel) -> None:
    with pytest.raises(UserError, match="output_schema cannot be used for structured outputs"):
        await make_model(strategy="json_schema").complete(request(schema={}))
    assert server.received == []


# -- messages -------------------------------------------------------------------------------------

HISTORY = (
    Message("system", "You deploy."),
    Message("user", "deploy v1.2.3"),
    Message(
        "assistant", "", tool_calls=(ToolCall("evt_1a2b", "deploy", '{"tag": "v1.2.3", "environment": "staging"}'),)
    ),
    Message("tool", "deployed", tool_call_id="evt_1a2b"),
    Message("user", "now production"),
    Message("assistant", '{"intent": "done_for_now", "message": "done"}'),
    Message("user", "one more"),
)


async def test_tool_calls_and_results_become_tool_blocks(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(message(tool_use("done_for_now", {"message": "ok"})))
    await make_model().complete(request(*HISTORY))
    assert server.last["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "deploy v1.2.3"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "evt_1a2b",
                    "name": "deploy",
                    "input": {"tag": "v1.2.3", "environment": "staging"},
                }
            ],
        },
        {
            # The result and the user's next words are one user turn, the result first.
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "evt_1a2b", "content": "deployed"},
                {"type": "text", "text": "now production"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": '{"intent": "done_for_now", "message": "done"}'}]},
        {"role": "user", "content": [{"type": "text", "text": "one more"}]},
    ]


async def test_without_tools_calls_and_results_are_text(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(message(text('{"intent": "done_for_now", "message": "ok"}')))
    await make_model(strategy="prompted").complete(request(*HISTORY))
    assert server.last["messages"][1:3] == [
        {
            "role": "assistant",
            "content": [{"type": "text", "text": '{"intent": "deploy", "tag": "v1.2.3", "environment": "staging"}'}],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<deploy_result>\ndeployed\n</deploy_result>"},
                {"type": "text", "text": "now production"},
            ],
        },
    ]


async def test_system_messages_join_the_system_parameter(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(message(tool_use("done_for_now", {"message": "ok"})))
    odd_id = Message("assistant", "", tool_calls=(ToolCall("call:7/x", "deploy", "not json"),))
    await make_model().complete(
        request(
            Message("system", "one"),
            Message("user", "hi"),
            odd_id,
            Message("system", "two"),
            Message("tool", "ok", tool_call_id="call:7/x"),
        )
    )
    assert server.last["system"] == [
        {"type": "text", "text": "one"},
        {"type": "text", "text": "two", "cache_control": {"type": "ephemeral"}},
    ]
    # Ids are made to fit Anthropic's alphabet the same way on both sides; unreadable arguments are empty.
    assert server.last["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_7_x", "name": "deploy", "input": {}}
    ]
    assert server.last["messages"][2]["content"][0]["tool_use_id"] == "call_7_x"


async def test_settings_request_wins_over_model(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(message(text("{}")))
    model = make_model(strategy="prompted", settings={"max_tokens": 300, "temperature": 0.5, "seed": 7})
    await model.complete(request(settings={"max_tokens": 100, "top_p": 0.9, "stop": ["END"]}))
    body = server.last
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["stop_sequences"]) == (100, 0.5, 0.9, ["END"])
    assert "seed" not in body  # Anthropic has none


async def test_a_large_max_tokens_is_sent_without_streaming(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(message(text("{}")))
    await make_model(strategy="prompted").complete(request(settings={"max_tokens": 64_000}))
    assert server.last["max_tokens"] == 64_000


# -- errors ---------------------------------------------------------------------------------------


async def test_a_429_is_retried_by_the_sdk_then_answers(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(Reply(error("rate_limit_error", "Number of requests has exceeded your rate limit"), 429, FAST_RETRY))
    server.reply(message(tool_use("done_for_now", {"message": "ok"})))
    completion = await make_model(max_retries=2).complete(request())
    assert completion.text == '{"intent": "done_for_now", "message": "ok"}' and len(server.received) == 2


@pytest.mark.parametrize(
    ("status", "kind"), [(429, "rate_limit_error"), (529, "overloaded_error")], ids=["rate_limited", "overloaded"]
)
async def test_rate_limits_and_overload_raise_rate_limited(
    server: MessagesServer, make_model: MakeModel, status: int, kind: str
) -> None:
    body = error(kind, "Overloaded" if status == 529 else "rate limited")
    server.reply(Reply(body, status, FAST_RETRY), Reply(body, status, FAST_RETRY))
    with pytest.raises(RateLimited) as info:
        await make_model(max_retries=1).complete(request())
    assert (info.value.status_code, info.value.body, info.value.model) == (status, body, "claude-test-1")
    assert len(server.received) == 2  # the first try and the one retry


async def test_a_prompt_too_long_is_context_too_long(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(Reply(error("invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum"), 400))
    with pytest.raises(ContextWindowExceeded, match="prompt is too long") as info:
        await make_model(max_retries=2).complete(request())
    assert info.value.status_code == 400 and len(server.received) == 1  # a 400 is not retried


async def test_an_answer_cut_off_by_the_context_window_is_context_too_long(
    server: MessagesServer, make_model: MakeModel
) -> None:
    server.reply(message(text('{"intent": "done_for_now", "mess'), stop_reason="model_context_window_exceeded"))
    with pytest.raises(ContextWindowExceeded, match="ran out of context window") as info:
        await make_model(strategy="prompted").complete(request())
    assert cast(Json, info.value.body)["stop_reason"] == "model_context_window_exceeded"


async def test_another_bad_request_is_a_provider_error(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(Reply(error("invalid_request_error", "tools.0.name: String should match pattern"), 400))
    with pytest.raises(ProviderError, match="HTTP 400: tools.0.name") as info:
        await make_model().complete(request())
    assert not isinstance(info.value, ContextWindowExceeded)


@pytest.mark.parametrize("status", [401, 500, 529])
async def test_an_api_key_the_provider_echoes_is_redacted(
    server: MessagesServer, make_model: MakeModel, status: int
) -> None:
    key = "sk-ant-SECRETKEY1234567890"
    server.reply(Reply(error("authentication_error", f"invalid x-api-key {key} (Bearer {key})"), status))
    with pytest.raises(ModelHTTPError) as info:
        await make_model(api_key=key).complete(request())
    assert str(info.value) == f"claude-test-1: HTTP {status}: invalid x-api-key [REDACTED] (Bearer [REDACTED])"
    assert key not in json.dumps(info.value.body) and "[REDACTED]" in json.dumps(info.value.body)


async def test_no_answer_in_time_is_a_model_timeout(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(Reply(message(text("late")), hold=True), Reply(message(text("late")), hold=True))
    with pytest.raises(ModelTimeout):
        await make_model(timeout=0.2).complete(request())
    with pytest.raises(ModelTimeout):  # the request's own setting
        await make_model().complete(request(settings={"timeout": 0.2}))


@pytest.mark.parametrize(
    "reply",
    [
        Reply("<html><body>502 Bad Gateway</body></html>"),
        Reply({"not": "a message"}),
        Reply("{not json", headers={"content-type": "application/json"}),
        Reply("<html>upstream error</html>", 500),
    ],
    ids=["html", "wrong-shape", "broken-json", "html-500"],
)
async def test_a_body_that_is_not_a_message_is_a_provider_error(
    server: MessagesServer, make_model: MakeModel, reply: Reply
) -> None:
    server.reply(reply)
    with pytest.raises(ProviderError) as info:
        await make_model().complete(request())
    assert info.value.status_code == reply.status


MALFORMED: dict[str, Json] = {
    "text block without text": message({"type": "text"}),
    "block not an object": message(cast(Json, "x")),
    "block null": message(cast(Json, None)),
    "token counts null": message(text("hi"), usage={"input_tokens": None, "output_tokens": None}),
    "usage empty": message(text("hi"), usage=cast(Json, {"_": 0})),
    "usage a string": {**message(text("hi")), "usage": "x"},
    "tool use without a name": message({"type": "tool_use", "id": "1", "input": {}}),
    "tool input not an object": message(tool_use("deploy", cast(Json, "tag=v1"))),
    "refusal details a string": {**message(stop_reason="refusal"), "stop_details": "x"},
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize("strategy", ["tools", "prompted"])
async def test_a_malformed_message_is_a_provider_error(
    server: MessagesServer, make_model: MakeModel, body: Json, strategy: str
) -> None:
    # The SDK builds its objects without checking them: None, strings and numbers reach our code.
    server.reply(body)
    try:
        completion = await make_model(strategy=strategy).complete(request())
    except ProviderError as exc:
        assert exc.status_code == 200 and isinstance(exc.body, str) and "malformed" in str(exc)
    else:  # prose reads no tool_use block: a malformed one is not read
        assert strategy == "prompted" and "tool_use" in json.dumps(body) and isinstance(completion.text, str)


async def test_an_error_message_that_is_not_text_is_still_a_provider_error(
    server: MessagesServer, make_model: MakeModel
) -> None:
    server.reply(Reply({"type": "error", "error": {"type": "invalid_request_error", "message": ["a"]}}, 400))
    with pytest.raises(ProviderError, match="HTTP 400") as info:
        await make_model().complete(request())
    assert info.value.status_code == 400


async def test_an_unreachable_server_is_a_provider_error_with_status_0(make_model: MakeModel) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderError, match="could not reach claude-test-1") as info:
        await make_model(base_url=f"http://127.0.0.1:{port}").complete(request())
    assert info.value.status_code == 0 and isinstance(info.value, ModelHTTPError)


async def test_a_refusal_raises_refused(server: MessagesServer, make_model: MakeModel) -> None:
    refusal = message(text(""), stop_reason="refusal")
    refusal["stop_details"] = {"type": "refusal", "category": "cyber", "explanation": "exploit development"}
    server.reply(refusal)
    with pytest.raises(Refused, match="declined to answer: exploit development"):
        await make_model().complete(request())


# -- with an agent --------------------------------------------------------------------------------


async def test_an_agent_runs_on_it(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(
        message(text("let me think")),  # not an intent: the loop records an error and asks again
        message(text('{"intent": "done_for_now", "message": "nothing to deploy"}')),
    )
    agent = Agent(name="deploy_bot", model=make_model(strategy="prompted"), tools=[deploy])
    thread = await agent.run(Thread.start("user_input", {"text": "anything to deploy?"}))
    assert thread.status == "done" and [e.type for e in thread.events] == ["user_input", "error", "done_for_now"]
    second = server.received[1].body
    assert second["system"][0]["text"].startswith(agent.instructions.strip()[:20])
    assert "could not be used" in json.dumps(second["messages"])


async def test_an_overloaded_claude_falls_back(server: MessagesServer, make_model: MakeModel) -> None:
    server.reply(Reply(error("overloaded_error", "Overloaded"), 529))
    spare = ScriptedModel(['{"intent": "done_for_now", "message": "from the spare"}'], name="spare")
    completion = await FallbackModel([make_model(), spare]).complete(request())
    assert completion.model == "spare" and len(server.received) == 1 and len(spare.requests) == 1
