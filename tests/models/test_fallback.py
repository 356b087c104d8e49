from __future__ import annotations

import pytest

from threadloom import (
    Agent,
    ContextWindowExceeded,
    ModelError,
    ModelTimeout,
    ParseError,
    ProviderError,
    RateLimited,
    Refused,
    ScriptExhausted,
    Thread,
    UserError,
)
from threadloom.context import Message
from threadloom.models import Completion, FallbackModel, Model, ModelRequest, ScriptedModel

DONE = '{"intent": "done_for_now", "message": "done"}'


class Failing:
    """A model that always raises the given error, and counts how often it was asked."""

    def __init__(self, error: Exception, name: str = "failing") -> None:
        self.error = error
        self.name = name
        self.calls = 0

    async def complete(self, request: ModelRequest) -> Completion:
        self.calls += 1
        raise self.error


def request(text: str = "hello") -> ModelRequest:
    return ModelRequest(messages=(Message("user", text),), output_schema={}, intent_names=("done_for_now",))


def rate_limited(name: str = "primary") -> RateLimited:
    return RateLimited(f"{name}: HTTP 429: slow down", status_code=429, model=name)


async def test_the_first_model_that_answers_wins() -> None:
    primary, secondary = ScriptedModel([DONE], name="primary"), ScriptedModel([DONE], name="secondary")
    model = FallbackModel([primary, secondary])
    assert isinstance(model, Model) and model.name == "fallback(primary, secondary)"
    assert (await model.complete(request())).model == "primary"
    assert secondary.requests == []


@pytest.mark.parametrize(
    "error",
    [
        rate_limited(),
        ProviderError("primary: HTTP 500: boom", status_code=500),
        ProviderError("could not reach primary", status_code=0),
        ContextWindowExceeded("primary: HTTP 400: prompt is too long", status_code=400),
        ModelTimeout("primary did not answer in time"),
    ],
    ids=["rate_limited", "server_error", "unreachable", "context_too_long", "timeout"],
)
async def test_http_errors_and_timeouts_fall_back(error: ModelError) -> None:
    primary, secondary = Failing(error, "primary"), ScriptedModel([DONE], name="secondary")
    asked = request()
    completion = await FallbackModel([primary, secondary]).complete(asked)
    assert completion == Completion(text=DONE, model="secondary")  # the completion says who answered
    assert primary.calls == 1 and secondary.requests == [asked]  # the same request, unchanged


@pytest.mark.parametrize(
    "error",
    [
        ParseError("answer by calling exactly one tool", text="prose"),
        Refused("primary declined to answer"),
        ScriptExhausted("out of outputs", requested=2, available=1),
    ],
    ids=["parse_error", "refused", "script_exhausted"],
)
async def test_other_errors_are_the_answer(error: Exception) -> None:
    secondary = ScriptedModel([DONE], name="secondary")
    with pytest.raises(type(error)) as info:
        await FallbackModel([Failing(error), secondary]).complete(request())
    assert info.value is error and secondary.requests == []


async def test_fallback_on_chooses_what_moves_on() -> None:
    only_rate_limits = FallbackModel(
        [Failing(ProviderError("HTTP 500", status_code=500)), ScriptedModel([DONE])], fallback_on=(RateLimited,)
    )
    with pytest.raises(ProviderError):
        await only_rate_limits.complete(request())
    anything = FallbackModel([Failing(Refused("no")), ScriptedModel([DONE], name="b")], fallback_on=(Exception,))
    assert (await anything.complete(request())).model == "b"


async def test_when_all_fail_the_last_error_is_raised_with_the_others_chained() -> None:
    first, second, third = rate_limited("a"), ModelTimeout("b did not answer in time"), rate_limited("c")
    models = [Failing(first, "a"), Failing(second, "b"), Failing(third, "c")]
    with pytest.raises(RateLimited) as info:
        await FallbackModel(models).complete(request())
    assert info.value is third
    assert info.value.__context__ is second and second.__context__ is first
    assert [m.calls for m in models] == [1, 1, 1]


async def test_each_request_starts_with_the_primary_again() -> None:
    def busy(messages: object) -> str:
        raise rate_limited()

    # No state is kept between requests: a primary that has recovered answers the next one.
    primary = ScriptedModel([busy, DONE], name="primary")
    model = FallbackModel([primary, ScriptedModel([DONE], name="secondary")])
    assert (await model.complete(request("one"))).model == "secondary"
    assert (await model.complete(request("two"))).model == "primary"


def test_misuse_is_refused_up_front() -> None:
    with pytest.raises(UserError, match="at least one model"):
        FallbackModel([])
    with pytest.raises(UserError, match=r"model 1 \(str\) has no `async complete\(request\)`"):
        FallbackModel([ScriptedModel([]), "openai:gpt-4.1"])  # pyright: ignore[reportArgumentType]
    with pytest.raises(UserError, match="fallback_on must be a tuple of exception types"):
        FallbackModel([ScriptedModel([])], fallback_on=[RateLimited])  # pyright: ignore[reportArgumentType]
    with pytest.raises(UserError, match="fallback_on must be a tuple of exception types"):
        FallbackModel([ScriptedModel([])], fallback_on=())


async def test_an_agent_keeps_going_on_the_secondary() -> None:
    primary = Failing(rate_limited(), "primary")
    agent = Agent(name="bot", model=FallbackModel([primary, ScriptedModel([DONE], name="secondary")]))
    thread = await agent.run(Thread.start("user_input", {"text": "hi"}))
    assert thread.status == "done" and [e.type for e in thread.events] == ["user_input", "done_for_now"]
    assert primary.calls == 1


class Asking(Failing):
    """A failing model that says how it asks (as provider models do with `strategy=`)."""

    def __init__(self, strategy: str) -> None:
        super().__init__(rate_limited())
        self.strategy = strategy


@pytest.mark.parametrize(
    ("strategies", "expected"),
    [(["tools", "tools"], "tools"), (["json_schema"], "json_schema"), (["tools", "json_schema"], "prompted")],
)
def test_the_prompt_follows_the_strategy_the_models_share(strategies: list[str], expected: str) -> None:
    from threadloom.prompts import NEXT_STEP_QUESTION, NEXT_TOOL_QUESTION

    model = FallbackModel([Asking(s) for s in strategies])
    assert model.strategy == expected
    agent = Agent(name="a", model=model)
    [*_, last] = agent.render(Thread.start("user_input", {"text": "hi"}))
    question = NEXT_TOOL_QUESTION if expected == "tools" else NEXT_STEP_QUESTION
    assert last.content.endswith(question)
