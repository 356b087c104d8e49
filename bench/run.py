"""Run every benchmark and write bench/RESULTS.md (tests never assert on timings; this does not either).

`make bench` builds the peers' own venv (bench/.venv-peers, from bench/peers/requirements.txt) and
runs this. Each framework runs as a subprocess with the same harness (bench/peers/harness.py), one
after another, so that none measures while another runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import time
import timeit
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import bench_append
import bench_durable
import bench_local
import bench_parsing
import bench_tokens

HERE = Path(__file__).parent
RESULTS = HERE / "RESULTS.md"
RAW = HERE / ".last-run.json"  # the raw numbers of the last run (git-ignored): `run.py --render` reuses them
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"
SIZES = [10, 100, 1000]
PEERS = {  # script, python, whether it persists
    "threadloom": (HERE / "bench_steps.py", Path(sys.executable)),
    "LangGraph": (HERE / "peers" / "langgraph_bench.py", PEERS_PYTHON),
    "pydantic-ai": (HERE / "peers" / "pydantic_ai_bench.py", PEERS_PYTHON),
    "OpenAI Agents SDK": (HERE / "peers" / "openai_agents_bench.py", PEERS_PYTHON),
}
PERSISTED_SIZES = {"threadloom": SIZES, "LangGraph": [10, 100], "OpenAI Agents SDK": SIZES}
SHORT_RUNS, SHORT_STEPS = 1000, 3


def job(name: str, **spec: Any) -> Any:
    script, python = PEERS[name]
    done = subprocess.run([str(python), str(script), json.dumps(spec)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} {spec['mode']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs else "–"


def load_average() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def speed_probe() -> float:
    """µs of a fixed pure-Python loop (`sum(range(10_000))`, best of 5 x 200): how fast the machine is now."""
    return min(timeit.repeat("sum(range(10_000))", number=200, repeat=5)) / 200 * 1e6


# -- sections ---------------------------------------------------------------------------------------


def peers_section(results: dict[str, Any]) -> str:
    names = list(PEERS)
    memory = results["memory"]
    lines = [
        "## Per step, in memory: threadloom beside the peers",
        "",
        "The workload (bench/workload.py): an agent calls a trivial async tool N times in a row, then",
        "finishes; each framework is driven by its own test model (threadloom: `ScriptedModel` with the raw",
        "text a model would write, keeping no requests as a model's client keeps none; LangGraph:",
        "langchain_core's `GenericFakeChatModel` in the prebuilt ReAct",
        "agent; pydantic-ai: `FunctionModel`; OpenAI Agents SDK: a fake `Model`). The agent is built once;",
        "a run is timed from the first event to the finished state, divided by N. Median of repeated runs",
        "(min–max; `runs` below). threadloom's step includes what the others' fake models skip: rendering",
        "the whole context to the exact prompt text and parsing the model's raw text into a typed intent.",
        "",
        "| N | " + " | ".join(f"{n} µs/step" for n in names) + " |",
        "| ---: | " + " | ".join("---:" for _ in names) + " |",
    ]
    for n in SIZES:
        cells: list[str] = []
        for name in names:
            r = memory[name][str(n)]
            cells.append(f"{r['median_us']:,.0f} ({r['min_us']:,.0f}–{r['max_us']:,.0f}; {r['runs']} runs)")
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Ratio threadloom ÷ peer (median per step; below 1 means threadloom spends less):",
        "",
        "| N | " + " | ".join(names[1:]) + " | fastest peer |",
        "| ---: | " + " | ".join("---:" for _ in names[1:]) + " | ---: |",
    ]
    for n in SIZES:
        ours = memory["threadloom"][str(n)]["median_us"]
        theirs = {name: memory[name][str(n)]["median_us"] for name in names[1:]}
        fastest = min(theirs, key=lambda k: theirs[k])
        cells = [ratio(ours, theirs[name]) for name in names[1:]]
        lines.append(f"| {n:,} | " + " | ".join(cells) + f" | {ratio(ours, theirs[fastest])} ({fastest}) |")

    persisted = results["persisted"]
    lines += [
        "",
        "## Per step, persisted to SQLite",
        "",
        "One run per N into a fresh file: threadloom's `SQLiteStore` (WAL, `synchronous=FULL`: every",
        "append is synced to disk), LangGraph's `SqliteSaver` (a checkpoint per super-step), the OpenAI",
        "Agents SDK's `SQLiteSession` (its items). pydantic-ai has no store of its own. *bytes/step*: the",
        "database file's growth (WAL folded in) over the run, per step. LangGraph's checkpoints copy the",
        "whole conversation at every step, so its bytes per step grow with N; its N = 1,000 run is left",
        "out (it would write gigabytes).",
        "",
        "| N | framework | ms/step | bytes/step | threadloom ÷ it (time) | threadloom ÷ it (bytes) |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for n in SIZES:
        ours = persisted["threadloom"].get(str(n))
        for name in PERSISTED_SIZES:
            r = persisted[name].get(str(n))
            if r is None:
                lines.append(f"| {n:,} | {name} | not run | | | |")
                continue
            time_ratio = "" if name == "threadloom" or not ours else ratio(ours["step_us"], r["step_us"])
            byte_ratio = "" if name == "threadloom" or not ours else ratio(ours["bytes_per_step"], r["bytes_per_step"])
            lines.append(
                f"| {n:,} | {name} | {r['step_us'] / 1e3:.2f} | {r['bytes_per_step']:,.0f} | {time_ratio} | {byte_ratio} |"
            )

    rss = results["rss"]
    lines += [
        "",
        f"## Memory: {SHORT_RUNS:,} short runs in one process",
        "",
        f"A fresh process per framework runs the workload with N = {SHORT_STEPS} (one agent, {SHORT_RUNS:,}",
        "runs, nothing kept). *Peak RSS*: the process's peak resident memory (imports included);",
        "*growth*: how much the peak rose during the runs.",
        "",
        "| framework | peak RSS (MB) | growth (MB) | ms per run | threadloom ÷ it (peak) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        r = rss[name]
        rel = "" if name == "threadloom" else ratio(rss["threadloom"]["peak_mb"], r["peak_mb"])
        lines.append(f"| {name} | {r['peak_mb']:.1f} | {r['growth_mb']:.1f} | {r['run_ms']:.2f} | {rel} |")
    return "\n".join(lines)


def durable_section(d: dict[str, Any]) -> str:
    lines = [
        "## The durable runtime: a step as the thread grows, resume, workers",
        "",
        "*Store step*: the two appends one tool call makes (`tool_call` with its `tool_started`, then",
        "`tool_response`, one transaction each, as the loop saves them) to a thread already holding 10 /",
        f"1,000 / 10,000 events; median of {bench_durable.STORE_STEPS} steps, and the database's growth per step.",
        "*Agent step*: `Runtime.run_thread` driving the same thread with the ScriptedModel (render, model",
        f"call, parse, tool, the two appends); median interval between two tool runs over {bench_durable.AGENT_STEPS} steps.",
        "`synchronous=NORMAL` is `SQLiteStore(path, synchronous='NORMAL')`: no disk sync per commit",
        "(survives a process crash, not a power cut). PostgreSQL: 127.0.0.1, `synchronous_commit=on`.",
        "",
        "| store | events in thread | store step (ms) | bytes/step | agent step (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, by_length in d["store"].items():
        for length, r in by_length.items():
            agent = d["agent"].get(label, {}).get(length)
            agent_cell = f"{agent:.2f}" if agent is not None else "–"
            lines.append(
                f"| {label} | {int(length):,} | {r['step_ms']:.2f} | {r['bytes_per_step']:,.0f} | {agent_cell} |"
            )
    lines += [
        "",
        "*Resume*: a fresh store and `Runtime` load a 10,000-event thread and take one step (the model",
        "finishes); best of 5. *Load* and *render* are the same thread's `store.load` and `agent.render`",
        "alone. Rendering 10,000 events writes a prompt of ~0.4 M tokens, more than any model takes:",
        "a real agent that long compacts its context (`before_model`), which the last column shows",
        "(the model sees the last 100 events).",
        "",
        "| store | resume (ms) | load (ms) | render (ms) | resume, context of the last 100 events (ms) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, r in d["resume"].items():
        lines.append(
            f"| {label} | {r['resume_ms']:.1f} | {r['load_ms']:.1f} | {r['render_ms']:.1f} | {r['compact_ms']:.1f} |"
        )
    if d.get("workers"):
        lines += [
            "",
            f"*Workers*: {bench_durable.WORKER_THREADS:,} threads of {bench_durable.WORKER_CALLS} tool calls and a finish",
            f"({bench_durable.WORKER_CALLS + 1} model steps each, ScriptedModel) drained by worker processes running",
            f"`Worker.run` as a service does (`concurrency={bench_durable.WORKER_CONCURRENCY}` each) on one PostgreSQL.",
            "*Steady steps/s*: the steps taken between the 10% and the 90% of all steps, over that time (start-up",
            "and the tail left out); *drain steps/s*: all steps over the time from the go signal to the last step.",
            "",
            "*Worker CPU/step*: the worker processes' own CPU time (user + system) per model step within the steady",
            "window, PostgreSQL's not included; 2 cores ÷ it bounds the steps/s these processes could reach with",
            "the machine to themselves.",
            "",
            "| worker processes | PostgreSQL | steps | steady steps/s | drain steps/s | worker CPU/step (ms) | bound: 2 cores ÷ CPU/step |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for key, r in d["workers"].items():
            processes, mode = key.split(":")
            cpu = r["worker_cpu_ms_per_step"]
            lines.append(
                f"| {processes} | {mode} | {r['steps']:,} | {r['steps_per_s']:,.0f} | {r['drain_steps_per_s']:,.0f} "
                f"| {cpu:.2f} | {2000 / cpu:,.0f} |"
            )
    if "postgres_error" in d:
        lines += ["", f"PostgreSQL rows are missing: {d['postgres_error']}"]
    return "\n".join(lines)


def targets_section(results: dict[str, Any], durable: dict[str, Any], tokens: dict[str, Any]) -> str:
    """The issues' targets beside what this run measured."""
    memory = results["memory"]
    rows: list[tuple[str, str, bool]] = []
    for n in SIZES:
        ours = memory["threadloom"][str(n)]["median_us"]
        fastest = min(memory[name][str(n)]["median_us"] for name in PEERS if name != "threadloom")
        rows.append(
            (f"in memory, N = {n:,}: ≤ 1/5 of the fastest peer", f"{ours / fastest:.2f} of it", ours <= fastest / 5)
        )
    first, last = (memory["threadloom"][str(n)]["median_us"] for n in (SIZES[0], SIZES[-1]))
    rows.append(
        (
            "in memory: flat from N = 10 to 1,000 (within 1.2×)",
            f"{last / first:.2f}× from 10 to 1,000",
            last <= 1.2 * first,
        )
    )
    for label in ("SQLite", "SQLite (synchronous=NORMAL)"):
        steps = durable["store"].get(label, {})
        if not steps:
            continue
        worst = max(r["step_ms"] for r in steps.values())
        rows.append((f"{label} durable step ≤ 1 ms median (store)", f"{worst:.2f} ms (worst length)", worst <= 1))
        agent = max(durable["agent"][label].values())
        rows.append((f"{label} durable step ≤ 1 ms median (agent step)", f"{agent:.2f} ms (worst length)", agent <= 1))
        grow = steps["10000"]["bytes_per_step"] / steps["10"]["bytes_per_step"]
        rows.append((f"{label} bytes/step at 10,000 within 1.2× of at 10", f"{grow:.2f}×", grow <= 1.2))
    for label, r in durable["resume"].items():
        rows.append(
            (f"{label}: resume a 10,000-event thread ≤ 50 ms", f"{r['resume_ms']:.0f} ms", r["resume_ms"] <= 50)
        )
    on = durable.get("workers", {}).get("4:synchronous_commit=on")
    if on:
        rows.append(
            (
                "≥ 1,000 steps/s at 4 workers on PostgreSQL",
                f"{on['steps_per_s']:,.0f} steps/s",
                on["steps_per_s"] >= 1000,
            )
        )
    for name, formats in tokens.items():
        base = formats["chat_json"]
        for fmt in ("xml", "yaml"):
            model = 1 - formats[fmt]["model"] / base["model"]
            wire = 1 - formats[fmt]["json"] / base["json"]
            rows.append(
                (
                    f"{name}: {fmt.upper()} ≥ 30% fewer tokens than the chat-messages JSON",
                    f"{wire:.0%} (JSON text); by what providers bill for messages, {model:.0%}",
                    wire >= 0.3,
                )
            )
    lines = [
        "## Targets (issues 5 and 6) against this run",
        "",
        "Met or missed as measured in the sections below; the README's Benchmarks section says why a target is missed.",
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {target} | {value} | {'met' if ok else '**missed**'} |" for target, value, ok in rows]
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--render"]:  # rewrite RESULTS.md from the last run's raw numbers
        raw = json.loads(RAW.read_text())
        append = raw.get("append") or bench_append.run()  # runs written before it was kept: measured now
        write(raw["results"], raw["durable"], raw["tokens"], raw["header"], raw["local"], append)
        return
    started = time.perf_counter()
    load_before = load_average()
    probe_before = speed_probe()
    results: dict[str, Any] = {"memory": {}, "persisted": {}, "rss": {}, "versions": {}}
    for name in PEERS:
        print(f"-- {name}", flush=True)
        results["versions"][name] = job(name, mode="version")["version"]
        results["memory"][name] = job(name, mode="memory", sizes=SIZES, budget=2.0)
        if name in PERSISTED_SIZES:
            results["persisted"][name] = job(name, mode="persisted", sizes=PERSISTED_SIZES[name])
        results["rss"][name] = job(name, mode="rss", runs=SHORT_RUNS, n=SHORT_STEPS)
    print("-- durable runtime", flush=True)
    durable = json.loads(json.dumps(asyncio.run(bench_durable.measure())))  # keys as text, as when read back
    print("-- tokens, parser, append", flush=True)
    tokens = bench_tokens.measure(bench_tokens.default_counter())
    print("-- the embedded model", flush=True)
    local = bench_local.run()
    append = bench_append.run()
    minutes = (time.perf_counter() - started) / 60
    header = {
        "minutes": minutes,
        "load_before": load_before,
        "load_after": load_average(),
        "probe": [probe_before, speed_probe()],
        "written": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
    }
    raw = {"results": results, "durable": durable, "tokens": tokens, "header": header, "local": local, "append": append}
    RAW.write_text(json.dumps(raw))
    write(results, durable, tokens, header, local, append)


def write(
    results: dict[str, Any],
    durable: dict[str, Any],
    tokens: dict[str, Any],
    info: dict[str, Any],
    local: str,
    append: str,
) -> None:
    sections = [
        targets_section(results, durable, tokens),
        peers_section(results),
        durable_section(durable),
        bench_tokens.run(tokens),
        bench_parsing.run(),
        append,  # timed in the run (`--render` does not time it again)
    ]
    minutes = info["minutes"]
    versions = "; ".join(f"{v}" for v in results["versions"].values())
    header = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {info.get('written', f'{datetime.now(UTC):%Y-%m-%d %H:%M}')} UTC"
        f" in {minutes:.1f} minutes, all in one run;",
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores. Re-run: `make bench`",
        "(it builds the peers' venv, bench/.venv-peers, from bench/peers/requirements.txt on first use).",
        "",
        f"Versions: {versions}; bpe-openai {version('bpe-openai')}; psycopg {version('psycopg')}.",
        "",
        "**The machine is shared**: other jobs may use the same 2 cores during a run (load average",
        f"{info['load_before']} at the start, {info['load_after']} at the end), so absolute times are noisy; the",
        "ratios compare frameworks measured one after another in the same run. Numbers are from one",
        "machine: compare rows, not machines.",
    ]
    if "probe" in info:  # absent from runs written before the probe existed
        before, after = info["probe"]
        header += [
            "",
            f"Machine speed: a fixed pure-Python loop (`sum(range(10_000))`, best of 5) took {before:.0f} µs at the",
            f"start and {after:.0f} µs at the end; a run where it is slower has every absolute time slower by about",
            "as much (the shared host's CPU varies from hour to hour).",
        ]
    sections.append(local)  # the embedded model (measured in main: it takes minutes)
    RESULTS.write_text("\n\n".join(["\n".join(header), *sections]) + "\n")
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
