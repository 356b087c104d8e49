"""What an instrumented agent holds is traced: a model put in after `instrument`, and a deep copy."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan

from test_otel_tools import DONE, FETCH, fetching, parent_of, provided, span_id
from threadloom import Agent, Thread
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
