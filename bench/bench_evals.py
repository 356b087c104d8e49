"""An eval of 1,000 cases replayed from a cassette, and what tracing costs a loop step; each beside its floor.

    .venv/bin/python bench/bench_evals.py            # prints the section
    .venv/bin/python bench/run.py --only evals       # the same, written into bench/RESULTS.md

Each figure is measured beside its floor, the same work without what the figure adds, round by
round in the same process so that the host's drift is in both; the ratio is the median of the
rounds' ratios:

- *eval*: `evaluate` over 1,000 one-step cases (a `NextIntent` check each) replayed from one
  cassette, 16 at once, with and without the cassette's load. Its floor: the agent's own `step` on
  each case's thread, one after another, with a `ScriptedModel` giving the same answer: the render,
  the model call and the parse that any eval of these cases must do.
- *tracing*: a 200-addition loop (`agent.run`) with `instrument` on, against the same loop with it
  off; its floor: the spans that run makes (a `chat` span per model call, an `execute_tool` span per
  tool run, one `invoke_agent`, with as many attributes), made with the SDK directly. Both through a
  `SimpleSpanProcessor` and an exporter that drops everything, so neither counts an exporter's I/O.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from threadloom import Agent, Message, Thread, tool
from threadloom.evals import Case, NextIntent, evaluate
from threadloom.models import ScriptedModel
from threadloom.models.cassette import Cassette
from threadloom.otel import instrument

STEPS = 200  # additions in the traced loop: 2 loop steps each (the model's, the tool's), and a last model step
CASES = 1_000
CONCURRENCY = 16
EVAL_ROUNDS = 5
TRACING_ROUNDS = 15
HEADING = "## Evals and tracing, each beside its floor"
ANSWER = '{"intent": "add", "a": 1, "b": 2}'


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class Dropping(SpanExporter):
    """Exports nowhere: the cost measured is threadloom's and the SDK's, not an exporter's I/O."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def dropping_provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Dropping()))
    return provider


# -- tracing ---------------------------------------------------------------------------------------


def counting_agent(provider: TracerProvider | None) -> Agent:
    def answer(messages: Sequence[Message]) -> str:
        calls = messages[-1].content.count("<add_result>")
        return ANSWER if calls < STEPS else '{"intent": "done_for_now", "message": "ok"}'

    agent = Agent(
        name="adder", model=ScriptedModel([answer] * (STEPS + 1), keep_requests=False), tools=[add], max_steps=STEPS + 5
    )
    return agent if provider is None else instrument(agent, tracer_provider=provider)


LOOP_STEPS = STEPS * 2 + 1


def loop_ms_per_step(provider: TracerProvider | None) -> float:
    agent = counting_agent(provider)
    started = time.perf_counter()
    thread = agent.run_sync(Thread.start("user_input", {"text": "add 1 and 2, many times"}))
    elapsed = time.perf_counter() - started
    assert thread.status == "done", thread.status
    return elapsed * 1000 / LOOP_STEPS


def bare_spans_ms_per_step(provider: TracerProvider) -> float:
    """The floor: the spans a traced run of the loop makes, made with the SDK alone, per loop step."""
    tracer = provider.get_tracer("floor")
    started = time.perf_counter()
    with tracer.start_as_current_span("invoke_agent adder", attributes={"a": 1, "b": 2, "c": 3, "d": 4}) as run:
        for call in range(STEPS + 1):
            attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "scripted"}
            with tracer.start_as_current_span("chat scripted", kind=SpanKind.CLIENT, attributes=attributes) as chat:
                for key in ("response.model", "usage.input_tokens", "usage.output_tokens"):
                    chat.set_attribute(key, 0)
            if call < STEPS:
                tool_attributes = {"operation": "execute_tool", "tool": "add", "call": str(call), "policy": "auto"}
                span = tracer.start_span("execute_tool add", attributes=tool_attributes)
                span.set_attribute("outcome", "ok")
                span.end()
        for key in ("status", "input_tokens", "output_tokens"):
            run.set_attribute(key, 0)
    return (time.perf_counter() - started) * 1000 / LOOP_STEPS


def measure_tracing() -> dict[str, Any]:
    provider = dropping_provider()
    loop_ms_per_step(None)  # warm imports and caches
    loop_ms_per_step(provider)
    rounds: list[tuple[float, float, float]] = []
    for _ in range(TRACING_ROUNDS):  # interleaved: whatever else runs on the host slows a round, not one side
        rounds.append((loop_ms_per_step(None), loop_ms_per_step(provider), bare_spans_ms_per_step(provider)))
    return {
        "rounds": TRACING_ROUNDS,
        "off_ms": statistics.median(r[0] for r in rounds),
        "on_ms": statistics.median(r[1] for r in rounds),
        "added_ms": statistics.median(r[1] - r[0] for r in rounds),
        "floor_ms": statistics.median(r[2] for r in rounds),
        "ratio": statistics.median((r[1] - r[0]) / r[2] for r in rounds),
    }


# -- evals ------------------------------------------------------------------------------------------


def cases() -> list[Case]:
    return [
        Case(f"case {i}", Thread.start("user_input", {"text": f"add {i} and 1"}), [NextIntent("add")])
        for i in range(CASES)
    ]


async def eval_seconds(path: Path, suite: list[Case]) -> tuple[float, float]:
    """Seconds to load the cassette, and to run the eval on it, as `threadloom eval run` does."""
    started = time.perf_counter()
    replayer = Agent(name="adder", model=Cassette(path, mode="replay"), tools=[add])
    loaded = time.perf_counter()
    report = await evaluate(replayer, suite, concurrency=CONCURRENCY)
    elapsed = time.perf_counter() - loaded
    assert report.pass_rate == 1.0
    return loaded - started, elapsed


async def steps_seconds(suite: list[Case]) -> float:
    """The floor: each case's one step, the model scripted to give the recorded answer."""
    agent = Agent(name="adder", model=ScriptedModel([ANSWER] * len(suite), keep_requests=False), tools=[add])
    started = time.perf_counter()
    for case in suite:
        event = await agent.step(case.thread)
        assert event.type == "tool_call", event
    return time.perf_counter() - started


async def measure_evals(folder: Path) -> dict[str, Any]:
    suite = cases()
    path = folder / "evals.yaml"
    recorder = Agent(name="adder", model=Cassette(path, ScriptedModel([ANSWER] * CASES), mode="record"), tools=[add])
    await evaluate(recorder, suite, concurrency=CONCURRENCY)
    rounds: list[tuple[float, float, float]] = []
    for _ in range(EVAL_ROUNDS):  # interleaved: whatever else runs on the host slows a round, not one side
        load, run = await eval_seconds(path, suite)
        rounds.append((load, run, await steps_seconds(suite)))
    return {
        "rounds": EVAL_ROUNDS,
        "cases": CASES,
        "cassette_mb": path.stat().st_size / 1e6,
        "load_s": statistics.median(r[0] for r in rounds),
        "eval_cases_per_s": statistics.median(CASES / r[1] for r in rounds),
        "whole_cases_per_s": statistics.median(CASES / (r[0] + r[1]) for r in rounds),
        "floor_steps_per_s": statistics.median(CASES / r[2] for r in rounds),
        "ratio": statistics.median(r[1] / r[2] for r in rounds),  # the eval's time over the floor's
        "whole_ratio": statistics.median((r[0] + r[1]) / r[2] for r in rounds),
    }


def measure() -> dict[str, Any]:
    """Both figures and their floors, as plain numbers (bench/run.py keeps them with the run)."""
    with tempfile.TemporaryDirectory() as folder:
        evals = asyncio.run(measure_evals(Path(folder)))
    return {"evals": evals, "tracing": measure_tracing()}


def section(measured: dict[str, Any]) -> str:
    """The Markdown section of RESULTS.md for these numbers."""
    e, t = measured["evals"], measured["tracing"]
    return "\n".join(
        [
            HEADING,
            "",
            f"*Eval*: `evaluate` over {e['cases']:,} one-step cases replayed from one cassette, {CONCURRENCY} at once,",
            "a `NextIntent` check each; *with the load*: the cassette's file read and parsed first, as",
            f"`threadloom eval run` does ({e['cassette_mb']:.1f} MB: each interaction keeps its whole request).",
            "*Floor*: the agent's own `step` on each case's thread, one after another, with a `ScriptedModel`",
            "giving the recorded answer: the render, the model call and the parse any eval of these cases must",
            "do. The eval also renders each case's context once more, kept in the report for a failure's",
            f"reader. Median of {e['rounds']} rounds, each an eval then its floor; the ratios are the medians of",
            "the rounds' (time ÷ the floor's time).",
            "",
            "| eval (cases/s) | with the load (cases/s) | load (s) | floor: bare steps (steps/s) | eval ÷ floor | with the load ÷ floor |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {e['eval_cases_per_s']:,.0f} | {e['whole_cases_per_s']:,.0f} | {e['load_s']:.2f} | {e['floor_steps_per_s']:,.0f} "
            f"| {e['ratio']:.2f}× | {e['whole_ratio']:.2f}× |",
            "",
            f"*Tracing*: a {STEPS}-addition loop ({LOOP_STEPS} loop steps: each model call and each tool run) with",
            "`instrument` off and on, through the SDK with a `SimpleSpanProcessor` and an exporter that drops",
            "everything. *Floor*: the spans that run makes (a `chat` span per model call, an `execute_tool` span",
            "per tool run, one `invoke_agent`, as many attributes) made with the SDK alone, per loop step.",
            f"Median of {t['rounds']} interleaved rounds; the ratio is the median of the rounds' (added ÷ floor).",
            "",
            "| loop step, off (ms) | on (ms) | added by tracing (ms) | floor: the same spans, bare (ms) | added ÷ floor |",
            "| ---: | ---: | ---: | ---: | ---: |",
            f"| {t['off_ms']:.3f} | {t['on_ms']:.3f} | {t['added_ms']:.3f} | {t['floor_ms']:.3f} | {t['ratio']:.2f}× |",
        ]
    )


def main() -> None:
    if sys.argv[1:]:
        raise SystemExit("usage: bench_evals.py (bench/run.py --only evals writes it into RESULTS.md)")
    print(section(measure()))


if __name__ == "__main__":
    main()
