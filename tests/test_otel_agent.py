"""What an instrumented agent holds is traced: a model or tools put in after `instrument`, and a deep copy."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from test_otel_tools import DONE, FETCH, fetching, parent_of, provided, span_id
from threadloom import Agent, Thread, Tool, tool
from threadloom.loop import run as run_loop
from threadloom.models import ScriptedModel
from threadloom.otel import TracedModel, instrument

START = Thread.start("user_input", {"text": "go"})


def names(spans: Sequence[ReadableSpan]) -> list[str]:
    return [s.name for s in spans]


def only(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    [span] = [s for s in spans if s.name == name]
    return span


def test_a_model_put_into_the_agent_after_instrument_is_traced() -> None:
    provider, exporter = provided()
    agent = instrument(Agent(name="ops", model=ScriptedModel([DONE])), tracer_provider=provider)
    agent.model = ScriptedModel([DONE], name="swapped")
    agent.run_sync(START)
    # Before: the swapped-in model was called bare, so the run had no model span at all.
    assert names(exporter.get_finished_spans()) == ["chat swapped", "invoke_agent ops"]
    assert isinstance(agent.model, TracedModel) and agent.model.name == "swapped"


def test_a_model_traced_already_is_not_wrapped_again() -> None:
    provider, exporter = provided()
    agent = instrument(Agent(name="ops", model=ScriptedModel([DONE, DONE])), tracer_provider=provider)
    held = agent.model
    agent.model = held  # read and put back, as code that swaps models to and fro does
    assert agent.model is held
    mine = TracedModel(ScriptedModel([DONE], name="mine"), tracer_provider=provider)
    agent.model = mine
    assert agent.model is mine
    agent.run_sync(START)
    assert names(exporter.get_finished_spans()) == ["chat mine", "invoke_agent ops"]  # one span a call


def replace_item(agent: Agent, fetch: Tool) -> None:
    agent.tools["fetch"] = fetch


def replace_all(agent: Agent, fetch: Tool) -> None:
    agent.tools = {"fetch": fetch}


def update(agent: Agent, fetch: Tool) -> None:
    agent.tools.update(fetch=fetch)


def merge(agent: Agent, fetch: Tool) -> None:
    agent.tools |= {"fetch": fetch}


@pytest.mark.parametrize("put", [replace_item, replace_all, update, merge])
async def test_a_tool_put_in_after_instrument_runs_inside_its_span_in_a_loop_of_ones_own(
    put: Callable[[Agent, Tool], None],
) -> None:
    provider, exporter = provided()
    agent = Agent(name="ops", model=ScriptedModel([FETCH, DONE]), tools=[fetching(provider, "first")])
    instrument(agent, tracer_provider=provider)
    put(agent, fetching(provider, "later"))
    held = agent.tools
    agent.tools = held
    assert agent.tools is held  # its own tools, put back, are the same dict (as an untraced agent's are)
    done = await run_loop(START, agent.step, tools=agent.tools, after_step=agent.after_step)
    assert done.events[-2].data == {"call_id": done.events[-4].id, "intent": "fetch", "result": "later"}
    spans = exporter.get_finished_spans()
    # Before: only `run` wrapped tools put in later, so here GET hung outside its tool's span.
    assert parent_of(only(spans, "GET later")) == span_id(only(spans, "execute_tool fetch"))


def fetching_now(provider: TracerProvider) -> Tool:
    inside = provider.get_tracer("an http client")

    @tool
    def fetch_now() -> str:
        """Fetch the page."""
        with inside.start_as_current_span("GET prefetched"):
            return "a page"

    return fetch_now


async def test_a_prefetch_put_in_after_instrument_runs_inside_its_span_in_a_loop_of_ones_own() -> None:
    provider, exporter = provided()
    agent = instrument(Agent(name="ops", model=ScriptedModel([DONE])), tracer_provider=provider)
    agent.prefetch = (fetching_now(provider),)
    await run_loop(START, agent.step, prefetch=agent.prefetch, after_step=agent.after_step)
    spans = exporter.get_finished_spans()
    assert parent_of(only(spans, "GET prefetched")) == span_id(only(spans, "execute_tool fetch_now"))


def test_a_deep_copy_of_an_instrumented_agent_is_traced_to_the_same_provider() -> None:
    provider, exporter = provided()
    agent = instrument(
        Agent(name="ops", model=ScriptedModel([FETCH, DONE]), tools=[fetching(provider, "x")]),
        tracer_provider=provider,
    )
    twin = copy.deepcopy(agent)  # before: TypeError, cannot pickle the provider's lock
    twin.run_sync(START)
    spans = exporter.get_finished_spans()
    assert names(spans) == ["chat scripted", "GET x", "execute_tool fetch", "chat scripted", "invoke_agent ops"]
    assert parent_of(only(spans, "GET x")) == span_id(only(spans, "execute_tool fetch"))
    # The copy is deep: its model has answers of its own, so the original still runs as before.
    exporter.clear()
    agent.run_sync(START)
    assert names(exporter.get_finished_spans()) == names(spans)
    assert instrument(twin, tracer_provider=provider) is twin  # the same provider: still a no-op
