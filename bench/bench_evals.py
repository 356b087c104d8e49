"""What tracing costs per step (on vs off), and how fast an eval of 1,000 cases replays from a cassette.

    .venv/bin/python bench/bench_evals.py

Prints a small Markdown table; not yet part of `bench/run.py` (its RESULTS.md is the bench owner's).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from threadloom import Agent, Message, Thread, tool
from threadloom.evals import Case, NextIntent, evaluate
from threadloom.models import ScriptedModel
from threadloom.models.cassette import Cassette
from threadloom.otel import instrument

STEPS = 200
CASES = 1_000


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class Dropping(SpanExporter):
    """Exports nowhere: the cost measured is threadloom's and the SDK's, not an exporter's I/O."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def counting_agent(traced: bool) -> Agent:
    def answer(messages: Sequence[Message]) -> str:
        calls = messages[-1].content.count("<add_result>")
        return '{"intent": "add", "a": 1, "b": 2}' if calls < STEPS else '{"intent": "done_for_now", "message": "ok"}'

    agent = Agent(
        name="adder", model=ScriptedModel([answer] * (STEPS + 1), keep_requests=False), tools=[add], max_steps=STEPS + 5
    )
    if traced:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(Dropping()))
        instrument(agent, tracer_provider=provider)
    return agent


def per_step_ms(traced: bool) -> float:
    agent = counting_agent(traced)
    started = time.perf_counter()
    thread = agent.run_sync(Thread.start("user_input", {"text": "add 1 and 2, many times"}))
    elapsed = time.perf_counter() - started
    assert thread.status == "done", thread.status
    return elapsed * 1000 / (STEPS * 2 + 1)  # a model step and a tool step per addition


async def eval_rate(folder: Path) -> tuple[float, float]:
    cases = [
        Case(f"case {i}", Thread.start("user_input", {"text": f"add {i} and 1"}), [NextIntent("add")])
        for i in range(CASES)
    ]
    answer = '{"intent": "add", "a": 1, "b": 2}'
    path = folder / "evals.yaml"
    recorder = Agent(name="adder", model=Cassette(path, ScriptedModel([answer] * CASES), mode="record"), tools=[add])
    await evaluate(recorder, cases, concurrency=16)
    replayer = Agent(name="adder", model=Cassette(path, mode="replay"), tools=[add])
    started = time.perf_counter()
    report = await evaluate(replayer, cases, concurrency=16)
    elapsed = time.perf_counter() - started
    assert report.pass_rate == 1.0
    return CASES / elapsed, path.stat().st_size / 1e6


def main() -> None:
    per_step_ms(False)  # warm up imports and caches
    # Interleaved, the fastest of each: on a shared host, whatever else runs slows one round or another.
    rounds = [(per_step_ms(False), per_step_ms(True)) for _ in range(7)]
    off, on = min(r[0] for r in rounds), min(r[1] for r in rounds)
    with tempfile.TemporaryDirectory() as folder:
        rate, megabytes = asyncio.run(eval_rate(Path(folder)))
    print("| measure | value |\n| --- | --- |")
    print(f"| loop step, tracing off | {off:.3f} ms |")
    print(f"| loop step, tracing on (SDK, dropping exporter) | {on:.3f} ms (+{on - off:.3f} ms) |")
    print(f"| eval of {CASES:,} cases replayed from one cassette | {rate:,.0f} cases/s ({megabytes:.1f} MB file) |")
    json.dump({"step_ms_off": off, "step_ms_on": on, "eval_cases_per_s": rate}, sys.stderr)


if __name__ == "__main__":
    main()
