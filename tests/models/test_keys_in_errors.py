"""No API key in what a provider's error shows: its message, its body, and its traceback.

A traceback (`traceback.format_exception`, `logging.exception`, an error reporter) walks the
error's `__cause__` and `__context__`; the SDK's own exception quotes the key the provider echoed
and holds the request with its Authorization header, so it must not be among them. Each case
runs against a scripted server on 127.0.0.1 (or a port nothing listens on).
"""

from __future__ import annotations

import socket
import traceback
from collections.abc import Callable, Iterator

import pytest
from http_script import Reply, ScriptedServer, serving

from threadloom.context import Message
from threadloom.exceptions import ModelError, ModelHTTPError, ProviderError
from threadloom.models import ModelRequest
from threadloom.models.anthropic import AnthropicModel
from threadloom.models.openai import OpenAIModel

KEY = "sk-live-SECRETKEY1234567890"
JSON_TYPE = {"content-type": "application/json"}  # what a broken gateway may claim
UNAUTHORIZED = {"error": {"type": "authentication_error", "message": f"Incorrect API key provided: {KEY}"}}
MakeModel = Callable[..., OpenAIModel | AnthropicModel]
REQUEST = ModelRequest(messages=(Message("user", "deploy v1.2.3"),), output_schema={}, intent_names=())


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with serving(ScriptedServer(Reply(UNAUTHORIZED, 401))) as fake:
        yield fake


def closed_url() -> str:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def chained(error: BaseException) -> list[BaseException]:
    """`error` and every exception reachable from it through `__cause__` and `__context__`."""
    found: list[BaseException] = []
    todo = [error]
    while todo:
        current = todo.pop()
        if not any(current is seen for seen in found):
            found.append(current)
            todo += [link for link in (current.__cause__, current.__context__) if link is not None]
    return found


def exposed(error: BaseException) -> str:
    """What a traceback shows, and the arguments and attributes of every exception in the chain."""
    parts = ["".join(traceback.format_exception(error))]
    parts += [f"{link.args!r} {vars(link)!r}" for link in chained(error)]
    return "\n".join(parts)


async def failure(model: OpenAIModel | AnthropicModel) -> ModelError:
    try:
        await model.complete(REQUEST)
    except ModelError as exc:
        return exc
    finally:
        await model.aclose()
    raise AssertionError("the model answered")


def openai_model(url: str, timeout: float = 60.0) -> OpenAIModel:
    return OpenAIModel(
        "gpt-test", base_url=f"{url}/v1", api_key=KEY, strategy="prompted", max_retries=0, timeout=timeout
    )


def anthropic_model(url: str, timeout: float | None = None) -> AnthropicModel:
    return AnthropicModel(
        "claude-test-1", base_url=url, api_key=KEY, strategy="prompted", max_retries=0, timeout=timeout
    )


def assert_no_key(error: ModelError) -> None:
    assert KEY not in exposed(error)
    # No SDK (or httpx) exception: it holds the request and its Authorization header.
    packages = {type(link).__module__.split(".")[0] for link in chained(error)}
    assert not packages & {"openai", "anthropic", "httpx", "httpx2", "httpcore"}, packages


@pytest.mark.parametrize("make", [openai_model, anthropic_model], ids=["openai", "anthropic"])
async def test_an_echoed_key_is_in_no_part_of_the_traceback(server: ScriptedServer, make: MakeModel) -> None:
    error = await failure(make(server.url))
    assert isinstance(error, ModelHTTPError) and error.status_code == 401
    assert_no_key(error)
    shown = "".join(traceback.format_exception(error))
    # What the provider said is still there, redacted, and the cause names the SDK's exception.
    assert "HTTP 401: Incorrect API key provided: [REDACTED]" in shown
    assert ".AuthenticationError: " in shown and shown.count("Incorrect API key provided: [REDACTED]") == 2


@pytest.mark.parametrize("make", [openai_model, anthropic_model], ids=["openai", "anthropic"])
@pytest.mark.parametrize(
    "reply",
    [Reply(f"<html>bad key {KEY}</html>", 200, JSON_TYPE), Reply(f"<html>bad key {KEY}</html>")],
    ids=["json-content-type", "html"],
)
async def test_a_body_that_is_not_json_is_kept_without_the_key(
    server: ScriptedServer, make: MakeModel, reply: Reply
) -> None:
    server.reply(reply)
    error = await failure(make(server.url))
    assert isinstance(error, ProviderError) and error.status_code == 200
    assert error.body == "<html>bad key [REDACTED]</html>"
    assert_no_key(error)


async def test_a_body_that_is_not_a_message_is_kept_without_the_key(server: ScriptedServer) -> None:
    server.reply({"type": "error_page", "note": f"your key {KEY}"})
    error = await failure(anthropic_model(server.url))
    assert isinstance(error, ProviderError) and error.body == {"type": "error_page", "note": "your key [REDACTED]"}
    assert_no_key(error)


@pytest.mark.parametrize("make", [openai_model, anthropic_model], ids=["openai", "anthropic"])
async def test_no_connection_and_no_answer_chain_no_sdk_exception(server: ScriptedServer, make: MakeModel) -> None:
    unreachable = await failure(make(closed_url()))
    assert isinstance(unreachable, ProviderError) and unreachable.status_code == 0
    assert_no_key(unreachable)
    server.reply(Reply(UNAUTHORIZED, 401, hold=True))
    late = await failure(make(server.url, timeout=0.2))
    assert "did not answer in time" in str(late)
    assert_no_key(late)


OTHER_KEY = "sk-proj-OTHERKEY0987654321"  # a key-like token the provider echoed, not the one sent
CHAT_ECHO = {
    "id": "c",
    "object": "chat.completion",
    "model": "gpt-test",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": {"key": KEY}}}],
}
MESSAGE_ECHO = {
    "id": "m",
    "type": "message",
    "role": "assistant",
    "model": "claude-test-1",
    "content": [{"type": "text", "text": {"note": f"keys {KEY} {OTHER_KEY}"}}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


@pytest.mark.parametrize(
    ("make", "body"), [(openai_model, CHAT_ECHO), (anthropic_model, MESSAGE_ECHO)], ids=["openai", "anthropic"]
)
async def test_a_malformed_answer_quoting_a_key_chains_no_exception_that_quotes_it(
    server: ScriptedServer, make: MakeModel, body: object
) -> None:
    server.reply(Reply(body))
    error = await failure(make(server.url))
    assert isinstance(error, ProviderError) and "a malformed response" in str(error)
    # Before: the TypeError the answer raised, quoting the raw value, stayed the error's __context__.
    assert error.__context__ is None or error.__context__ is error.__cause__
    assert_no_key(error)
    assert OTHER_KEY not in exposed(error)
