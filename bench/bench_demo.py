"""The demo's embedded model: how often `make demo` reaches `done` with the newest tag.

Runs the demo's own run (`examples.deploy_bot.demo`: the same agent, model, bounds and canned
answers; its printing goes to a buffer) once per seed with SmolLM2-135M (`LocalModel`) sampling at
the demo's temperature, and sorts the outcomes. `--before` also runs, on the same seeds, the bot as
it was before this benchmark existed: the tags as a bare table (commit, date) and every intent
offered at every step. Writes the section `## The demo's embedded model` at the end of
bench/RESULTS.md (the rest of the file is left as it is).

    .venv/bin/python bench/bench_demo.py [--runs 20] [--before]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))  # the examples

from examples import deploy_bot

from threadloom import Agent, Thread, tool
from threadloom.agent import AfterStep
from threadloom.models import Model
from threadloom.models.local import LocalModel

RESULTS = Path(__file__).parent / "RESULTS.md"
HEADING = "## The demo's embedded model"
NEWEST = deploy_bot.TAGS[0]["name"]


@dataclass(frozen=True)
class Run:
    seed: int
    status: str
    deploys: tuple[tuple[str, str], ...]
    """(tag, environment) of each deploy that ran."""
    model_calls: int
    model_errors: int
    seconds: float

    @property
    def outcome(self) -> str:
        tags = Counter(tag for tag, _ in self.deploys)
        ran = ", ".join(f"{tag} {'once' if n == 1 else f'{n} times'}" for tag, n in sorted(tags.items())) or "nothing"
        if self.status != "done":
            return f"not done (stopped {self.status}), deployed {ran}"
        return f"done, deployed {ran}"

    @property
    def newest_done(self) -> bool:
        return self.status == "done" and bool(self.deploys) and all(tag == NEWEST for tag, _ in self.deploys)


@tool(name="list_git_tags")
def bare_tags() -> list[dict[str, str]]:
    """List the backend's most recent git tags, newest first."""
    return deploy_bot.TAGS


def build_before(model: Model, *, max_steps: int, after_step: AfterStep | None) -> Agent:
    """The bot before: the tags as a bare table, every intent offered at every step."""
    return Agent(
        name="deploy_bot",
        model=model,
        tools=[deploy_bot.deploy_backend],
        prefetch=[bare_tags],
        instructions=deploy_bot.INSTRUCTIONS,
        max_steps=max_steps,
        after_step=after_step,
    )


async def one_run(model: LocalModel, seed: int, store: str, build: deploy_bot.Build) -> Run:
    model.seed = seed
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):
        thread = await deploy_bot.demo(model, store, True, None, False, build=build)
    return summarize(thread, seed, time.monotonic() - started)


def summarize(thread: Thread, seed: int, seconds: float) -> Run:
    arguments: dict[str, Any] = {}
    deploys: list[tuple[str, str]] = []
    errors = 0
    for event in thread.events:
        data: Any = event.data
        if event.type == "tool_call":
            arguments[event.id] = data["arguments"]
        elif event.type == "tool_response" and data["intent"] == "deploy_backend":
            called = arguments[data["call_id"]]
            deploys.append((str(called["tag"]), str(called["environment"])))
        elif event.type == "error" and data.get("source") == "model":
            errors += 1
    return Run(seed, thread.status, tuple(deploys), thread.usage.requests, errors, seconds)


async def runs(count: int, build: deploy_bot.Build, label: str) -> list[Run]:
    model = LocalModel(temperature=deploy_bot.TEMPERATURE)
    done: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(count):
            run = await one_run(model, seed, f"sqlite:///{tmp}/{label}-{seed}.db", build)
            done.append(run)
            print(f"{label} seed {seed}: {run.outcome}, {run.deploys}, {run.model_calls} calls, {run.seconds:.1f}s")
    model.close()
    return done


def table(results: list[Run]) -> list[str]:
    outcomes = Counter(r.outcome for r in results)
    lines = ["| outcome | runs |", "| --- | ---: |"]
    lines += [f"| {outcome} | {n} |" for outcome, n in outcomes.most_common()]
    return lines


def environments(results: list[Run]) -> str:
    counted = Counter(env for r in results for _, env in r.deploys)
    return ", ".join(f"{env} {n}" for env, n in counted.most_common()) or "none"


def section(now: list[Run], before: list[Run] | None, minutes: float) -> str:
    share = sum(r.newest_done for r in now)
    calls = sum(r.model_calls for r in now) / len(now)
    lines = [
        HEADING,
        "",
        f"`make demo`'s run (`examples.deploy_bot.demo`, every deploy approved, one question answered, "
        f"at most {deploy_bot.MAX_STOPS} approvals) with SmolLM2-135M-Instruct (`LocalModel`, grammar-constrained) "
        f"sampling at temperature {deploy_bot.TEMPERATURE}, once per seed 0..{len(now) - 1} (the demo draws a new "
        "seed each run; at temperature 0 every run would be the same). The bot: the prefetched tags name the "
        "newest (`newest: v1.2.3`, names only), and `offer=` narrows each step (deploy or ask; after a "
        "deploy ran, finish or ask). The model writes every tag and every choice itself.",
        "",
        f"**{share} of {len(now)} runs ({share / len(now):.0%}) reach `done` with the newest tag {NEWEST}** "
        f"(and only it) deployed; {calls:.1f} model calls a run on average. Environments of the deploys that ran: "
        f"{environments(now)} (the message asked for production).",
        "",
        *table(now),
    ]
    if before is not None:
        old = sum(r.newest_done for r in before)
        lines += [
            "",
            f"The same seeds with the bot as it was (the tags as a bare table with commits and dates, every "
            f"intent offered at every step): {old} of {len(before)} ({old / len(before):.0%}). "
            f"Environments: {environments(before)}.",
            "",
            *table(before),
        ]
    lines += [
        "",
        f"The whole run took {minutes:.1f} minutes on 2 cores shared with other jobs (load average "
        f"{os.getloadavg()[0]:.1f}). Re-run: `.venv/bin/python bench/bench_demo.py --before`.",
    ]
    return "\n".join(lines) + "\n"


def write(text: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else ""
    kept = old.split(f"\n{HEADING}\n")[0].rstrip() if f"\n{HEADING}\n" in old else old.rstrip()
    RESULTS.write_text(f"{kept}\n\n{text}" if kept else text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--before", action="store_true", help="also run the bot as it was, on the same seeds")
    args = parser.parse_args()
    started = time.monotonic()
    now = asyncio.run(runs(args.runs, deploy_bot.build_agent, "now"))
    before = asyncio.run(runs(args.runs, build_before, "before")) if args.before else None
    text = section(now, before, (time.monotonic() - started) / 60)
    write(text)
    print(text)


if __name__ == "__main__":
    main()
