"""`LocalModel` with the real shipped SmolLM2-135M GGUF: no mocks, no network.

What the tiny model chooses is not asserted; that every answer is a valid intent with its usage is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import TypeAdapter

from threadloom import Agent, Thread, UserError, parse, tool
from threadloom.context import Context, Message
from threadloom.exceptions import ContextWindowExceeded, ModelTimeout, OverTokenBudget
from threadloom.models import Completion, Model, ModelRequest
from threadloom.models.local import LocalModel, default_weights, grammar_schema
from threadloom.tokens import TokenCounter, count_messages

SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1"


@tool
def list_git_tags() -> list[str]:
    """List the backend's git tags, newest first."""
    return ["v1.2.3", "v1.2.2"]


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
    """Deploy a tagged backend build to an environment."""
    return f"deployed {tag} to {environment}"


class Recording:
    """A model that passes requests on and keeps each completion (the test's view of usage)."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.requests: list[ModelRequest] = []
        self.completions: list[Completion] = []

    @property
    def name(self) -> str:
        return self.inner.name

    async def complete(self, request: ModelRequest) -> Completion:
        self.requests.append(request)
        completion = await self.inner.complete(request)
        self.completions.append(completion)
        return completion


@pytest.fixture(scope="module")
def model() -> Iterator[LocalModel]:
    """The shipped weights with a small window and short answers, loaded once for the module."""
    local = LocalModel(n_ctx=1024, max_tokens=48)
    yield local
    local.close()


def deploy_bot(model: Model) -> Agent:
    return Agent(
        name="deploy_bot",
        model=model,
        tools=[deploy_backend],
        prefetch=[list_git_tags],
        instructions="Deploy what people ask for, using the newest tag.",
        max_steps=2,
    )


def request(agent: Agent, text: str) -> ModelRequest:
    schema = TypeAdapter[Any](agent.intent_type).json_schema()
    names = tuple(agent.tools) + ("done_for_now",)
    return ModelRequest(messages=(Message("user", text),), output_schema=schema, intent_names=names)


async def test_the_deploy_bot_runs_end_to_end_and_every_step_is_a_valid_intent(model: LocalModel) -> None:
    recording = Recording(model)
    agent = deploy_bot(recording)
    thread = await agent.run(Thread.start("slack_message", {"text": "deploy the backend to production"}))
    # Whatever the model picks, play the person: approve deploys, answer a question once.
    for _ in range(2):
        pending = thread.pending
        if thread.status == "waiting_approval" and pending is not None:
            thread = await agent.run(thread.approve(pending.id))
        elif thread.status == "waiting_human" and pending is not None:
            thread = await agent.run(thread.respond(pending.id, "Yes, the newest tag to production."))

    assert recording.completions, "the model was never asked"
    model_errors = [e for e in thread.events if e.type == "error" and isinstance(e.data, dict) and e.data.get("source")]
    assert model_errors == []
    for completion in recording.completions:
        assert isinstance(parse(completion.text, agent.intent_type), agent.intents)
        assert completion.model == SMOLLM2 and completion.strategy == "json_schema"
        assert completion.usage.input_tokens > 0 and completion.usage.output_tokens > 0
        assert completion.latency_ms > 0 and completion.stop_reason in ("stop", "length")
    # The prompt grows with the thread: later calls read more tokens than the first.
    inputs = [c.usage.input_tokens for c in recording.completions]
    assert inputs == sorted(inputs)


async def test_without_the_grammar_it_still_answers_with_text() -> None:
    free = LocalModel(grammar=False, n_ctx=512, max_tokens=24)
    try:
        agent = deploy_bot(free)
        completion = await free.complete(request(agent, "Deploy v1.2.3 to staging."))
    finally:
        free.close()
    assert completion.text.strip() and completion.strategy == "prompted"
    assert completion.usage.input_tokens > 0 and 0 < completion.usage.output_tokens <= 24


async def test_concurrent_calls_on_one_model_take_turns(model: LocalModel) -> None:
    agent = deploy_bot(model)
    first, second = await asyncio.gather(
        model.complete(request(agent, "Deploy v1.2.3 to staging.")),
        model.complete(request(agent, "Nothing to do, say you are done.")),
    )
    for completion in (first, second):
        assert isinstance(parse(completion.text, agent.intent_type), agent.intents)


async def test_a_prompt_over_the_window_is_context_too_long() -> None:
    small = LocalModel(n_ctx=200, max_tokens=8)
    assert small.n_ctx == 256  # as llama.cpp pads it
    try:
        with pytest.raises(ContextWindowExceeded, match=r"exceed context window of 256 \(n_ctx=256\)") as caught:
            await small.complete(request(deploy_bot(small), "deploy the backend " * 100))
    finally:
        small.close()
    assert caught.value.model == SMOLLM2 and caught.value.status_code == 0


async def test_a_request_timeout_is_model_timeout(model: LocalModel) -> None:
    agent = deploy_bot(model)
    timed = request(agent, "Deploy v1.2.3 to staging.")
    timed = ModelRequest(timed.messages, timed.output_schema, timed.intent_names, settings={"timeout": 0})
    with pytest.raises(ModelTimeout, match="no answer within 0s"):
        await model.complete(timed)


def test_the_model_counts_tokens_with_its_own_tokenizer(model: LocalModel) -> None:
    assert isinstance(model, TokenCounter) and model.exact and model.count("") == 0
    words = model.count_tokens("deploy the backend")
    assert 0 < words < len("deploy the backend")
    assert model.count_tokens("deploy the backend " * 10) > 5 * words
    # As a context's counter, the budget is counted in this model's tokens.
    thread = Thread.start("slack_message", {"text": "deploy the backend to production"})
    messages = Context().render(thread)
    with pytest.raises(OverTokenBudget, match=rf"\({SMOLLM2}\)") as caught:
        Context(counter=model, max_tokens=3).render(thread)
    assert caught.value.tokens == count_messages(messages, model)


def test_the_grammar_schema_puts_a_required_intent_first_and_bounds_free_text() -> None:
    agent = deploy_bot(LocalModel())
    schema = grammar_schema(TypeAdapter[Any](agent.intent_type).json_schema())
    deploy = schema["$defs"]["DeployBackend"]
    assert deploy["required"] == ["intent", "tag", "environment"]
    assert deploy["properties"]["tag"]["maxLength"] == 200
    assert "maxLength" not in deploy["properties"]["environment"]  # an enum is bounded already
    assert schema["$defs"]["RequestHumanInput"]["properties"]["choices"]["maxItems"] == 8
    assert "discriminator" not in schema


def test_construction_checks_the_file_and_settings(tmp_path: Path) -> None:
    assert LocalModel().path == default_weights() and default_weights().name == f"{SMOLLM2}.gguf"
    with pytest.raises(UserError, match="no GGUF file at"):
        LocalModel(tmp_path / "missing.gguf")
    with pytest.raises(UserError, match="at least 1"):
        LocalModel(max_tokens=0)


async def test_chat_messages_with_tool_calls_and_results_are_sent_as_the_template_knows(model: LocalModel) -> None:
    recording = Recording(model)
    agent = Agent(
        name="deploy_bot",
        model=recording,
        tools=[deploy_backend],
        prefetch=[list_git_tags],
        context=Context(format="messages"),
        max_steps=1,
    )
    await agent.run(Thread.start("slack_message", {"text": "deploy the backend to staging"}))
    roles = [m.role for m in recording.requests[0].messages]
    assert roles[-3:] == ["assistant", "tool", "user"]  # the prefetch as a call and its result, then the question
    (completion,) = recording.completions
    assert isinstance(parse(completion.text, agent.intent_type), agent.intents)
