"""The `execute_tool` spans: what they say of a failure, and that every one of them ends."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pydantic import SecretStr

from threadloom import Agent, Thread, tool
from threadloom.models import ScriptedModel
from threadloom.otel import instrument

DONE = '{"intent": "done_for_now", "message": "k"}'


@tool
def login(user: str, api_key: SecretStr) -> str:
    """Log in."""
    raise PermissionError(f"key {api_key.get_secret_value()} was rejected for {user}")


def traced(agent: Agent) -> tuple[Agent, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return instrument(agent, tracer_provider=provider), exporter


def tool_spans(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith("execute_tool ")]


def test_a_tool_error_quoting_its_secret_argument_keeps_it_out_of_the_span() -> None:
    answers = ['{"intent": "login", "user": "ada", "api_key": "sk-live-abcdef123456"}', DONE]
    agent, exporter = traced(Agent(name="ops", model=ScriptedModel(answers), tools=[login]))
    thread = agent.run_sync(Thread.start("user_input", {"text": "go"}))
    # Before: the status description was the exception's text as raised, the key in it.
    [span] = tool_spans(exporter.get_finished_spans())
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "PermissionError: key [REDACTED] was rejected for ada"
    assert "sk-live-abcdef123456" not in str(thread.events[-2].data)  # the error event itself
