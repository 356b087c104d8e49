"""Usage and cost live in the thread (factor 5): recorded with each event a model call produced,
totalled by the fold, never shown to the model, priced by a table you can override."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom import Agent, Event, ParseError, Thread, UserError, tool
from threadloom.context import Context
from threadloom.models import PRICES, Completion, ModelRequest, Price, Usage, cost, price_for
from threadloom.state import model_record


@tool
def list_git_tags() -> list[str]:
    """List recent tags."""
    return ["v1.2.3"]


class MeteredModel:
    """A model whose answers come with token counts, as a provider's do."""

    def __init__(self, answers: Sequence[tuple[str, Usage]], name: str = "gpt-4.1-mini-2025-04-14") -> None:
        self.answers = list(answers)
        self.requests: list[ModelRequest] = []
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: ModelRequest) -> Completion:
        self.requests.append(request)
        text, usage = self.answers[len(self.requests) - 1]
        return Completion(text, self._name, usage=usage, latency_ms=12.34, stop_reason="stop", strategy="json_schema")


def record(name: str, tokens_in: int, tokens_out: int, cached: int = 0) -> dict[str, Any]:
    return {"name": name, "input_tokens": tokens_in, "output_tokens": tokens_out, "cached_tokens": cached}


def test_the_fold_totals_each_models_calls() -> None:
    thread = Thread.start("user_input", {"text": "go"})
    thread = thread.append(
        Event("tool_call", {"intent": "x", "arguments": {}, "policy": "auto", "model": record("a", 100, 10, 80)})
    )
    thread = thread.append(Event("error", {"source": "model", "message": "bad", "model": record("a", 120, 5)}))
    thread = thread.append(Event("done_for_now", {"message": "ok", "model": record("b", 50, 7)}))
    assert thread.usage_by_model == {"a": Usage(220, 15, 80, requests=2), "b": Usage(50, 7, 0)}
    assert thread.usage == Usage(270, 22, 80, requests=3)
    # Derived, not stored: the same totals after JSON, and a fork has its prefix's.
    assert Thread.from_json(thread.to_json()).usage == thread.usage
    assert thread.fork(at=thread.events[1].id).usage == Usage(100, 10, 80)
    assert Thread.start("user_input", {"text": "go"}).usage == Usage(requests=0)


@pytest.mark.parametrize(
    "event",
    [
        Event("slack_message", {"text": "which car?", "model": {"name": "Model S", "input_tokens": 5}}),
        Event("tool_response", {"call_id": "c", "intent": "x", "result": 1, "model": record("a", 1, 1)}),
        Event("done_for_now", {"message": "ok", "model": "gpt-4.1"}),
        Event("done_for_now", {"message": "ok", "model": {"input_tokens": 5}}),
    ],
    ids=["outside event", "tool result", "not an object", "no name"],
)
def test_only_a_model_record_on_a_model_event_counts(event: Event) -> None:
    assert Thread.start("user_input", {"text": "go"}).append(event).usage == Usage(requests=0)


def test_counts_that_are_not_token_counts_are_zero() -> None:
    bad: dict[str, JsonValue] = {"name": "a", "input_tokens": -5, "output_tokens": True, "cached_tokens": "12"}
    thread = Thread.start("user_input", {}).append(Event("done_for_now", {"message": "ok", "model": bad}))
    assert thread.usage_by_model == {"a": Usage(0, 0, 0)}


async def test_an_agent_records_every_call_with_the_event_it_produced() -> None:
    model = MeteredModel(
        [
            ('{"intent": "list_git_tags"}', Usage(300, 8, 256)),
            ("I think we are done here.", Usage(340, 9, 256)),  # not an intent: still paid for
            ('{"intent": "done_for_now", "message": "v1.2.3"}', Usage(380, 12, 256)),
        ]
    )
    thread = await Agent(name="a", model=model, tools=[list_git_tags]).run(Thread.start("user_input", {"text": "tag?"}))
    kinds = [e.type for e in thread.events]
    assert kinds == ["user_input", "tool_call", "tool_started", "tool_response", "error", "done_for_now"]
    records = {e.type: e.data["model"] for e in thread.events if isinstance(e.data, dict) and "model" in e.data}
    assert records["tool_call"] == {
        "name": "gpt-4.1-mini-2025-04-14",
        "input_tokens": 300,
        "output_tokens": 8,
        "cached_tokens": 256,
        "latency_ms": 12.3,
        "strategy": "json_schema",
        "stop_reason": "stop",
    }
    assert set(records) == {"tool_call", "error", "done_for_now"}
    assert thread.usage == Usage(1020, 29, 768, requests=3)
    # The model saw its mistake, but never a token count.
    for request in model.requests[1:]:
        assert all("input_tokens" not in m.content and "gpt-4.1-mini" not in m.content for m in request.messages)
    assert "could not be used" in model.requests[2].messages[-1].content


@pytest.mark.parametrize("format", ["xml", "yaml", "messages"])
def test_no_rendering_shows_the_model_record(format: Literal["xml", "yaml", "messages"]) -> None:
    thread = Thread.start("user_input", {"text": "go"})
    thread = thread.append(
        Event("tool_call", {"intent": "x", "arguments": {"a": 1}, "policy": "auto", "model": record("m-1", 1, 2)})
    )
    thread = thread.append(Event("tool_response", {"call_id": thread.events[-1].id, "intent": "x", "result": 2}))
    thread = thread.append(Event("request_human_input", {"question": "ok?", "model": record("m-1", 3, 4)}))
    thread = thread.append(Event("done_for_now", {"message": "bye", "model": record("m-1", 5, 6)}))
    rendered = "\n".join(m.content + str(m.tool_calls) for m in Context(format=format).render(thread))
    assert "m-1" not in rendered and "input_tokens" not in rendered
    assert "bye" in rendered and "ok?" in rendered
    assert thread.events[-1].data == {"message": "bye", "model": record("m-1", 5, 6)}  # the log keeps it


def test_cost_prices_tokens_with_cached_ones_cheaper() -> None:
    usage = {"gpt-4.1-mini-2025-04-14": Usage(1_000_000, 500_000, 400_000)}
    spent = cost(usage)
    # 600k uncached at $0.40/M + 400k cached at $0.10/M + 500k out at $1.60/M
    assert spent.total == pytest.approx(0.24 + 0.04 + 0.80)
    assert spent.by_model == {"gpt-4.1-mini-2025-04-14": pytest.approx(1.08)} and spent.unpriced == ()


def test_prices_match_exact_names_then_the_longest_family() -> None:
    assert price_for("gpt-4.1") == PRICES["gpt-4.1"]
    assert price_for("gpt-4.1-mini-2025-04-14") == PRICES["gpt-4.1-mini"]  # not gpt-4.1's
    assert price_for("openai/gpt-4o-mini") == PRICES["gpt-4o-mini"]  # routed names
    assert price_for("claude-sonnet-4-5-20250929") == PRICES["claude-sonnet-4-5"]
    assert price_for("SmolLM2-135M-Instruct") is None


def test_your_prices_win_and_unpriced_models_are_named() -> None:
    usage = {"gpt-4.1": Usage(1_000_000, 0), "my-vllm": Usage(2_000_000, 1_000_000), "scripted": Usage(0, 0)}
    spent = cost(usage, prices={"gpt-4.1": Price(1.0, 4.0), "my-vllm": (0.05, 0.10)})
    assert spent.by_model == {"gpt-4.1": pytest.approx(1.0), "my-vllm": pytest.approx(0.20)}
    assert spent.total == pytest.approx(1.20) and spent.unpriced == ()
    assert cost({"local-llama": Usage(10, 10)}).unpriced == ("local-llama",)
    with pytest.raises(UserError, match="price for 'x' must be a Price"):
        cost({"x": Usage(1, 1)}, prices={"x": (1.0,)})  # pyright: ignore[reportArgumentType]


def test_cost_of_a_thread() -> None:
    thread = Thread.start("user_input", {}).append(
        Event("done_for_now", {"message": "ok", "model": record("claude-haiku-4-5", 2_000_000, 100_000, 1_000_000)})
    )
    # 1M uncached at $1/M + 1M cached at $0.10/M + 100k out at $5/M
    assert cost(thread).total == pytest.approx(1.0 + 0.10 + 0.50)


class JudgingModel:
    """A model that raises ParseError itself for an answer it knows is unusable (no tokens to report)."""

    name = "judging"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: ModelRequest) -> Completion:
        self.calls += 1
        if self.calls == 1:
            raise ParseError("call exactly one tool", text="[two calls]")
        return Completion('{"intent": "done_for_now", "message": "ok"}', "judging", usage=Usage(10, 2))


async def test_a_model_that_raises_parse_error_gets_the_same_error_and_retry() -> None:
    thread = await Agent(name="a", model=JudgingModel()).run(Thread.start("user_input", {"text": "go"}))
    assert [e.type for e in thread.events] == ["user_input", "error", "done_for_now"]
    assert thread.events[1].data == {
        "source": "model",
        "error_type": "ParseError",
        "message": "call exactly one tool",
        "output": "[two calls]",
    }
    assert thread.usage == Usage(10, 2)


_types = st.sampled_from(["tool_call", "error", "done_for_now", "request_human_input", "user_input", "tool_response"])
_records = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a", "b"]),
        "input_tokens": st.integers(0, 10_000),
        "output_tokens": st.integers(0, 10_000),
        "cached_tokens": st.integers(0, 10_000),
    }
)


@given(st.lists(st.tuples(_types, st.one_of(st.none(), _records)), max_size=30))
def test_usage_is_the_sum_of_the_records_on_model_events(steps: list[tuple[str, dict[str, Any] | None]]) -> None:
    events = [Event(kind, {} if rec is None else {"model": rec}) for kind, rec in steps]
    expected: dict[str, Usage] = {}
    for event in events:
        record = model_record(event)
        if record is not None:
            name = str(record["name"])
            usage = Usage(int(record["input_tokens"]), int(record["output_tokens"]), int(record["cached_tokens"]))  # pyright: ignore[reportArgumentType]
            expected[name] = expected[name] + usage if name in expected else usage
    thread = Thread(events)
    assert thread.usage_by_model == expected
    assert thread.usage.requests == sum(
        1 for kind, rec in steps if rec is not None and kind != "user_input" and kind != "tool_response"
    )
    assert Thread.from_json(thread.to_json()).usage == thread.usage
