"""Run every benchmark and write bench/RESULTS.md (tests never assert on timings; this does not either).

`make bench` builds the peers' own venv (bench/.venv-peers, from bench/peers/requirements.txt) and
runs this. Each framework runs as a subprocess with the same harness (bench/peers/harness.py), one
after another, so that none measures while another runs.

- `python bench/run.py`: run everything, keep the raw numbers in bench/.last-run.json, write RESULTS.md;
- `python bench/run.py --render`: write RESULTS.md again from bench/.last-run.json;
- `python bench/run.py --keep LABEL`: keep the last run (bench/runs/, committed) under LABEL: every
  RESULTS.md written from then on shows it, its ratios beside the latest run's (`before (main at
  dceadad)` kept, the next `make bench` writes the "after" next to it);
- `python bench/run.py --only evals`: measure only that section (about a minute) and write RESULTS.md
  (`--only server`: bench_server.py and its kill -9 mode, about 15 minutes)
  with it as the latest run (a run of one section; it takes the last run's place in
  bench/.last-run.json, so `--keep` a full run first to keep it in view).
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
import bench_evals
import bench_parsing
import bench_server
import bench_server_kill
import bench_tokens

HERE = Path(__file__).parent
RESULTS = HERE / "RESULTS.md"
RAW = HERE / ".last-run.json"  # the raw numbers of the last run (git-ignored): `run.py --render` reuses them
DEMO_HEADING = "## The demo's embedded model"  # bench_demo.py's section, at the end of RESULTS.md
RUNS = HERE / "runs"  # the raw numbers of the runs kept with `run.py --keep LABEL`, shown in every RESULTS.md
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


STEP_TARGET, RESUME_TARGET, WORKERS_TARGET = 1.3, 1.5, 0.5  # issue 18: the durable figures beside their floors


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def durable_section(d: dict[str, Any]) -> str:
    lines = [
        "## The durable runtime: a step as the thread grows, resume, workers, each beside its floor",
        "",
        "Each durable figure is measured beside its physical floor, the same database work done bare",
        "(bench/floors.py), pair by pair in the same run so that the host's drift is in both: the",
        "*ratio* is the median of the pairs' ratios (figure ÷ floor), and the target is stated on it.",
        "",
        "*Store step*: the two appends one tool call makes (`tool_call` with its `tool_started`, then",
        "`tool_response`, one transaction each, as the loop saves them) to a thread already holding 10 /",
        f"1,000 / 10,000 events; median of {bench_durable.STORE_STEPS} steps, and the database's growth per step.",
        "*Bare sqlite3*: the same two transactions (`BEGIN IMMEDIATE`, the thread's row updated, the new",
        "event rows inserted, `COMMIT`) with the stdlib `sqlite3` alone, writing the same rows (checked",
        "equal) into a file of the same tables and indexes, WAL, the same `synchronous`; on FULL its second",
        "commit, like the runtime's, skips the disk sync (`PRAGMA synchronous=NORMAL` around it). The two",
        "alternate step by step. Target: store step ≤ 1.3× the bare one. The bare rows are encoded",
        "beforehand; *bare + encoding* adds what making them costs with the stdlib (`json.dumps` of each",
        "event's data, `isoformat` of its time, the row's time formatted), as any store of these events must.",
        "*Agent step*: `Runtime.run_thread` driving the same thread with the ScriptedModel (render, model",
        f"call, parse, tool, the two appends); median interval between two tool runs over {bench_durable.AGENT_STEPS} steps.",
        "`synchronous=NORMAL` is `SQLiteStore(path, synchronous='NORMAL')`: no disk sync per commit",
        "(survives a process crash, not a power cut). PostgreSQL: 127.0.0.1, `synchronous_commit=on`",
        "(its store step has no floor here).",
        "",
        "| store | events in thread | store step (ms) | bare sqlite3 (ms) | ratio | target ≤ 1.3× | bare + encoding (ms) | ratio to it | bytes/step | bare bytes/step | agent step (ms) |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, by_length in d["store"].items():
        for length, r in by_length.items():
            agent = d["agent"].get(label, {}).get(length)
            agent_cell = f"{agent:.2f}" if agent is not None else "–"
            if "ratio" in r:
                floor = f"{r['floor_ms']:.2f} | {r['ratio']:.2f}× | {met(r['ratio'] <= STEP_TARGET)}"
                floor += (
                    f" | {r['encoded_floor_ms']:.2f} | {r['encoded_ratio']:.2f}×"
                    if "encoded_ratio" in r
                    else " | – | –"
                )
                floor_bytes = f"{r['floor_bytes_per_step']:,.0f}"
            else:
                floor, floor_bytes = "– | – | – | – | –", "–"
            lines.append(
                f"| {label} | {int(length):,} | {r['step_ms']:.2f} | {floor} | {r['bytes_per_step']:,.0f} "
                f"| {floor_bytes} | {agent_cell} |"
            )
    lines += [
        "",
        "*Resume*: a fresh store and `Runtime` load a 10,000-event thread and take one step (the model",
        "finishes); best of 5. *Load* and *render* are the same thread's `store.load` and `agent.render`",
        "alone. *Bare fetch + decode*, the floor: on a fresh connection (sqlite3, or psycopg), the thread's",
        "metadata and its event rows in order fetched and each row's data `json.loads`ed; best of 5, each",
        "round's timed right after its resume, on the same thread. Each timed part starts from a collected",
        "heap (`gc.collect()` in the harness; one full collection costs this host about a floor, so where it",
        "fell decided a round's ratio). Target: resume (load and first step) ≤ 1.5× the",
        "floor; the load alone beside it. Rendering 10,000 events writes a prompt of ~0.4 M tokens, more",
        "than any model takes: a real agent that long compacts its context (`before_model`), which the",
        "last column shows (the model sees the last 100 events).",
        "",
        "| store | resume (ms) | load (ms) | bare fetch + decode (ms) | resume ÷ floor | target ≤ 1.5× | load ÷ floor | render (ms) | resume, context of the last 100 events (ms) |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for label, r in d["resume"].items():
        if "ratio" in r:
            floor = (
                f"{r['floor_ms']:.1f} | {r['ratio']:.2f}× | {met(r['ratio'] <= RESUME_TARGET)} | {r['load_ratio']:.2f}×"
            )
        else:
            floor = "– | – | – | –"
        lines.append(
            f"| {label} | {r['resume_ms']:.1f} | {r['load_ms']:.1f} | {floor} | {r['render_ms']:.1f} | {r['compact_ms']:.1f} |"
        )
    if d.get("workers"):
        plan = d.get("worker_plan")
        replayed = f" (a thread: one claim and {plan['statements']} statements)" if plan else ""
        lines += [
            "",
            f"*Workers*: {bench_durable.WORKER_THREADS:,} threads of {bench_durable.WORKER_CALLS} tool calls and a finish",
            f"({bench_durable.WORKER_CALLS + 1} model steps each, ScriptedModel) drained by worker processes running",
            f"`Worker.run` as a service does (`concurrency={bench_durable.WORKER_CONCURRENCY}` each) on one PostgreSQL.",
            "*Steady steps/s*: the steps taken between the 10% and the 90% of all steps, over that time (start-up",
            "and the tail left out); *drain steps/s*: all steps over the time from the go signal to the last step.",
            "*Bare psycopg*, the floor: as many processes, each running as many plain loops at once as a worker",
            f"runs threads ({bench_durable.WORKER_CONCURRENCY}), each loop on a psycopg connection of its own, replaying the statements",
            f"a `Worker` sends for a thread{replayed}, recorded from a real one with their parameters: the",
            "claim of one thread (the same statement), then that thread's appends in turn, and again until",
            "nothing is left to claim (the worker's look for due sleepers, once a poll, is left out). It",
            f"drains the same {bench_durable.WORKER_THREADS:,} threads in a fresh schema right after the workers' row, its steady steps/s",
            "counted the same way (a step is where the worker asked its model).",
            "Target: the workers' steady steps/s ≥ half the floor's.",
            "",
            "*Worker CPU/step*: the worker processes' own CPU time (user + system) per model step within the steady",
            "window, PostgreSQL's not included (*bare CPU/step*: the floor's processes', the same way); 2 cores ÷",
            "it bounds the steps/s these processes could reach with the machine to themselves.",
            "",
            "| worker processes | PostgreSQL | steps | steady steps/s | bare psycopg steps/s | ratio | target ≥ 0.5× | drain steps/s | worker CPU/step (ms) | bare CPU/step (ms) | bound: 2 cores ÷ CPU/step |",
            "| ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for key, r in d["workers"].items():
            processes, mode = key.split(":")
            cpu = r["worker_cpu_ms_per_step"]
            if "ratio" in r:
                floor = f"{r['floor']['steps_per_s']:,.0f} | {r['ratio']:.2f}× | {met(r['ratio'] >= WORKERS_TARGET)}"
                bare_cpu = f"{r['floor']['worker_cpu_ms_per_step']:.2f}"
            else:
                floor, bare_cpu = "– | – | –", "–"
            lines.append(
                f"| {processes} | {mode} | {r['steps']:,} | {r['steps_per_s']:,.0f} | {floor} "
                f"| {r['drain_steps_per_s']:,.0f} | {cpu:.2f} | {bare_cpu} | {2000 / cpu:,.0f} |"
            )
    if "postgres_error" in d:
        lines += ["", f"PostgreSQL rows are missing: {d['postgres_error']}"]
    return "\n".join(lines)


def floor_rows(durable: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The ratio targets of issue 18: (target, measured, met) for each durable figure measured beside its floor."""
    rows: list[tuple[str, str, bool]] = []
    for label in ("SQLite", "SQLite (synchronous=NORMAL)"):
        steps = [r for r in durable["store"].get(label, {}).values() if "ratio" in r]
        if steps:
            worst = max(steps, key=lambda r: r["ratio"])
            rows.append(
                (
                    f"{label}: store step ≤ {STEP_TARGET}× a bare sqlite3 transaction (worst length)",
                    f"{worst['ratio']:.2f}× ({worst['step_ms']:.2f} ms beside {worst['floor_ms']:.2f} ms)",
                    worst["ratio"] <= STEP_TARGET,
                )
            )
        encoded = [r for r in steps if "encoded_ratio" in r]
        if encoded:
            worst = max(encoded, key=lambda r: r["encoded_ratio"])
            rows.append(
                (
                    f"{label}: store step ≤ {STEP_TARGET}× the bare transaction and the stdlib's encoding of its rows"
                    " (worst length)",
                    f"{worst['encoded_ratio']:.2f}× ({worst['step_ms']:.2f} ms beside {worst['encoded_floor_ms']:.2f} ms)",
                    worst["encoded_ratio"] <= STEP_TARGET,
                )
            )
    for label, r in durable["resume"].items():
        if "ratio" in r:
            rows.append(
                (
                    f"{label}: resume a 10,000-event thread ≤ {RESUME_TARGET}× a bare fetch + JSON decode",
                    f"{r['ratio']:.2f}× ({r['resume_ms']:.0f} ms beside {r['floor_ms']:.0f} ms; load alone {r['load_ratio']:.2f}×)",
                    r["ratio"] <= RESUME_TARGET,
                )
            )
    for key, r in durable.get("workers", {}).items():
        processes, mode = key.split(":")
        if "ratio" in r and mode == "synchronous_commit=on":
            rows.append(
                (
                    f"PostgreSQL, {processes} worker process{'es' if processes != '1' else ''}: ≥ half the steps/s of a bare psycopg loop",
                    f"{r['ratio']:.2f}× ({r['steps_per_s']:,.0f} beside {r['floor']['steps_per_s']:,.0f} steps/s)",
                    r["ratio"] >= WORKERS_TARGET,
                )
            )
    return rows


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
    rows += floor_rows(durable)
    for label in ("SQLite", "SQLite (synchronous=NORMAL)"):
        steps = durable["store"].get(label, {})
        if not steps:
            continue
        agent = max(durable["agent"][label].values())
        rows.append(
            (f"{label} durable step ≤ 1 ms median (agent step; absolute)", f"{agent:.2f} ms (worst length)", agent <= 1)
        )
        grow = steps["10000"]["bytes_per_step"] / steps["10"]["bytes_per_step"]
        rows.append((f"{label} bytes/step at 10,000 within 1.2× of at 10", f"{grow:.2f}×", grow <= 1.2))
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
        "## Targets (issues 5, 6 and 18) against this run",
        "",
        "Met or missed as measured in the sections below; the README's Benchmarks section says why a target is missed.",
        "The durable figures' targets are ratios to their floors measured beside them (issue 18: on a shared host",
        "the milliseconds move 2–3× from hour to hour); the agent step's is still in milliseconds (it has no floor).",
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {target} | {value} | {'met' if ok else '**missed**'} |" for target, value, ok in rows]
    return "\n".join(lines)


LOCAL_TIMEOUT = 360  # seconds for the embedded model's section (under a minute on a quiet host)


def local_section() -> str:
    """bench_local.py's section, run in a process of its own: if llama.cpp crashes or hangs, the other numbers stay."""
    try:
        done = subprocess.run(
            [sys.executable, str(HERE / "bench_local.py")], capture_output=True, text=True, timeout=LOCAL_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        why = f"it did not finish in {LOCAL_TIMEOUT // 60} minutes"
    else:
        if done.returncode == 0:
            return done.stdout.strip()
        why = f"its process ended with exit status {done.returncode} ({done.stderr.strip()[-300:] or 'no message'})"
    return "\n".join(
        ["## Local model (SmolLM2-135M-Instruct Q4_1, in process)", "", f"Not measured in this run: {why}."]
    )


def code_version() -> str:
    """The commit the run measures (with `+changes` if src/ or bench/ differ from it), or "unknown"."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "bench"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--render"]:  # rewrite RESULTS.md from the last run's raw numbers
        write(json.loads(RAW.read_text()))
        return
    if args[:1] == ["--keep"] and len(args) == 2:  # keep the last run in RESULTS.md, under this label, from now on
        raw = json.loads(RAW.read_text())
        raw["label"] = args[1]
        RUNS.mkdir(exist_ok=True)
        (RUNS / f"{slug(args[1])}.json").write_text(json.dumps(raw, indent=1) + "\n")
        write(raw)
        return
    if args[:1] == ["--only"] and args[1:] in (["evals"], ["server"]):  # one section, measured alone: a run of its own
        started, code, load_before, probe_before = time.perf_counter(), code_version(), load_average(), speed_probe()
        only = args[1]
        measured = bench_evals.measure() if only == "evals" else measure_server()
        raw = {"header": run_header(started, code, load_before, probe_before), only: measured, "only": only}
        RAW.write_text(json.dumps(raw))
        write(raw)
        return
    if args:
        raise SystemExit("usage: run.py [--render | --keep LABEL | --only evals | --only server]")
    started = time.perf_counter()
    code = code_version()  # before RESULTS.md is rewritten
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
    append = bench_append.run()
    print("-- evals and tracing", flush=True)
    evals = bench_evals.measure()
    print("-- the server, beside LangGraph's", flush=True)
    server = measure_server()
    print("-- the embedded model", flush=True)
    local = local_section()
    header = run_header(started, code, load_before, probe_before)
    raw = {
        "results": results,
        "durable": durable,
        "tokens": tokens,
        "header": header,
        "local": local,
        "append": append,
        "evals": evals,
        "server": server,
    }
    RAW.write_text(json.dumps(raw))
    write(raw)


def measure_server() -> dict[str, Any]:
    """bench_server.py's run, with bench_server_kill.py's under `kill`."""
    server = bench_server.measure()
    server["kill"] = bench_server_kill.measure()
    return server


def run_header(started: float, code: str, load_before: str, probe_before: float) -> dict[str, Any]:
    """How a run ran: how long, the load and the machine's speed at its start and end, the code and versions."""
    return {
        "minutes": (time.perf_counter() - started) / 60,
        "load_before": load_before,
        "load_after": load_average(),
        "probe": [probe_before, speed_probe()],
        "written": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
        "code": code,
        "versions": {
            "python": platform.python_version(),
            "bpe-openai": version("bpe-openai"),
            "psycopg": version("psycopg"),
        },
    }


def slug(label: str) -> str:
    """A file name for a kept run's label: `before (main at dceadad)` -> `before-main-at-dceadad`."""
    return "-".join("".join(c if c.isalnum() else " " for c in label.lower()).split()) or "run"


def kept_runs() -> list[dict[str, Any]]:
    """The runs kept with `--keep` (bench/runs/*.json), oldest first."""
    runs = [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))] if RUNS.exists() else []
    return sorted(runs, key=lambda r: r["header"]["written"])


def write(latest: dict[str, Any]) -> None:
    """RESULTS.md: the ratios of every run side by side, then the latest run, then each kept run, newest first.

    The latest run is the one just measured (or `--render`'s); if it is itself kept, it appears once,
    under its label.
    """
    kept = kept_runs()
    runs = [r for r in kept if r["header"]["written"] != latest["header"]["written"]]
    if len(runs) == len(kept):
        runs.append(latest)  # the latest is not kept: it comes after the kept ones, as "this run"
    else:
        runs = kept
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (bench/run.py; it builds the peers' venv, bench/.venv-peers, from",
        "bench/peers/requirements.txt on first use). Each section below is one run, all of its numbers",
        "measured together. A run kept with `python bench/run.py --keep LABEL` (after `make bench`; its raw",
        "numbers go to bench/runs/) stays in this file, under its label, when later runs rewrite it, so a",
        "run before a change and one after it are read side by side; the first table puts their ratios to",
        "the floors beside each other.",
        "",
        ratios_table(runs),
    ]
    blocks = [run_block(r, latest=r is latest) for r in reversed(runs)]
    # bench/bench_demo.py writes its own section (20 runs of the embedded model take minutes): kept as it is.
    old = RESULTS.read_text() if RESULTS.exists() else ""
    demo = old[old.index(DEMO_HEADING) :].strip() if DEMO_HEADING in old else ""
    blocks += [demo] if demo else []
    RESULTS.write_text("\n".join(lines) + "\n\n" + "\n\n".join(blocks) + "\n")
    print(RESULTS.read_text())


def run_name(raw: dict[str, Any]) -> str:
    return raw.get("label") or f"this run (code at {raw['header'].get('code', 'unknown')})"


def ratios_table(runs: list[dict[str, Any]]) -> str:
    """The durable figures' ratios to their floors (issue 18), one column a run (a run of one section has none)."""
    runs = [r for r in runs if "durable" in r]
    measured = [{target: (value, ok) for target, value, ok in floor_rows(r["durable"])} for r in runs]
    targets = list(dict.fromkeys(t for m in measured for t in m))
    lines = [
        "## Ratios to the floor, run by run",
        "",
        "| target | " + " | ".join(f"{run_name(r)}, {r['header']['written']} UTC" for r in runs) + " |",
        "| --- | " + " | ".join("---" for _ in runs) + " |",
    ]
    for target in targets:
        cells = [f"{m[target][0]}: {met(m[target][1])}" if target in m else "not measured" for m in measured]
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_block(raw: dict[str, Any], *, latest: bool) -> str:
    """One run: its heading, how it ran, and its sections one level down."""
    info = raw["header"]
    # Runs kept before the evals section existed say so; a run of one section (`--only`) has only it.
    evals = (
        bench_evals.section(raw["evals"]) if "evals" in raw else f"{bench_evals.HEADING}\n\nNot measured in this run."
    )
    # The server's section, likewise (runs kept before it have none).
    server = (
        bench_server.section(raw["server"])
        if "server" in raw
        else f"{bench_server.HEADING}\n\nNot measured in this run."
    )
    if "only" in raw:
        sections = [evals if raw["only"] == "evals" else server]
    else:
        results, durable, tokens = raw["results"], raw["durable"], raw["tokens"]
        sections = [
            targets_section(results, durable, tokens),
            peers_section(results),
            durable_section(durable),
            bench_tokens.run(tokens),
            bench_parsing.run(),
            raw.get("append") or bench_append.run(),  # timed in the run (runs written before it was kept: now)
            evals,
            server,
            raw["local"],  # the embedded model (measured in main: it takes minutes)
        ]
    body = "\n\n".join(sections)
    body = "\n".join("#" + line if line.startswith("## ") else line for line in body.splitlines())
    peers = raw["results"]["versions"].values() if "results" in raw else ()
    versions = "".join(f"{v}; " for v in peers)
    more = info.get("versions", {})
    command = f"`bench/run.py --only {raw['only']}`" if "only" in raw else "`make bench`"
    title = run_name(raw) if latest or "label" in raw else f"an earlier run (code at {info.get('code', 'unknown')})"
    header = [
        f"## {title[0].upper()}{title[1:]}: {info['written']} UTC",
        "",
        f"Written by {command} in {info['minutes']:.1f} minutes, in one run, on code at {info.get('code', 'unknown')};",
        f"Python {more.get('python', platform.python_version())}, {platform.machine()}, {os.cpu_count()} cores.",
        "",
        f"Versions: {versions}bpe-openai {more.get('bpe-openai', version('bpe-openai'))};"
        f" psycopg {more.get('psycopg', version('psycopg'))}.",
        "",
        "**The machine is shared**: other jobs may use the same 2 cores during a run (load average",
        f"{info['load_before']} at the start, {info['load_after']} at the end), so absolute times are noisy; the",
        "ratios compare frameworks measured one after another in the same run, and each durable figure",
        "with its floor measured beside it. Numbers are from one machine: compare rows, not machines.",
    ]
    if "probe" in info:  # absent from runs written before the probe existed
        before, after = info["probe"]
        header += [
            "",
            f"Machine speed: a fixed pure-Python loop (`sum(range(10_000))`, best of 5) took {before:.0f} µs at the",
            f"start and {after:.0f} µs at the end; a run where it is slower has every absolute time slower by about",
            "as much (the shared host's CPU varies from hour to hour).",
        ]
    if "note" in info:  # what went otherwise in this run, said by whoever kept it
        header += ["", info["note"]]
    return "\n".join(header) + "\n\n" + body


if __name__ == "__main__":
    main()
