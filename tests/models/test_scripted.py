from collections.abc import Sequence

import pytest

from threadloom import ScriptExhausted, UserError
from threadloom.context import Message
from threadloom.models import Completion, Model, ModelRequest, ScriptedModel


def request(text: str) -> ModelRequest:
    return ModelRequest(messages=(Message("user", text),), output_schema={}, intent_names=("done_for_now",))


async def test_replays_outputs_in_order_and_records_requests() -> None:
    model = ScriptedModel(["first", "second"], name="fake-1")
    assert isinstance(model, Model)
    one, two = request("a"), request("b")
    assert await model.complete(one) == Completion(text="first", model="fake-1")
    assert await model.complete(two) == Completion(text="second", model="fake-1")
    assert model.requests == [one, two] and model.remaining == 0


async def test_a_model_that_keeps_no_requests_still_replays_in_order_and_runs_out() -> None:
    model = ScriptedModel(["first", "second"], keep_requests=False)
    assert [(await model.complete(request(t))).text for t in "ab"] == ["first", "second"]
    assert model.requests == [] and model.remaining == 0  # nothing holds the prompts it was sent
    with pytest.raises(ScriptExhausted, match="asked for output 3 but the script has 2"):
        await model.complete(request("c"))


async def test_outputs_can_be_functions_of_the_messages() -> None:
    def echo(messages: Sequence[Message]) -> str:
        return messages[-1].content.upper()

    async def later(messages: Sequence[Message]) -> str:
        return str(len(messages))

    model = ScriptedModel([echo, later])  # pyright: ignore[reportArgumentType]
    assert (await model.complete(request("hi"))).text == "HI"
    assert (await model.complete(request("x"))).text == "1"


async def test_running_out_raises_clearly() -> None:
    model = ScriptedModel(["only"])
    await model.complete(request("a"))
    with pytest.raises(ScriptExhausted, match="asked for output 2 but the script has 1") as info:
        await model.complete(request("b"))
    assert (info.value.requested, info.value.available) == (2, 1)
    assert len(model.requests) == 1


def test_bad_outputs_are_refused_up_front() -> None:
    with pytest.raises(UserError, match="output 1 is a int"):
        ScriptedModel(["ok", 3])  # pyright: ignore[reportArgumentType]


async def test_a_function_must_return_text() -> None:
    model = ScriptedModel([lambda messages: 42])  # pyright: ignore[reportArgumentType]
    with pytest.raises(UserError, match="returned a int"):
        await model.complete(request("a"))
