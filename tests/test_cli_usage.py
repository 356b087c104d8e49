"""`threadloom usage`: tokens and cost per model, agent and thread, read from the stored threads; the built-in
price table dated, a price file of your own laid over it."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue
from typer.testing import CliRunner

from cli_support import cli, corrupt, refund, store_thread
from threadloom import Agent, Event, Runtime, Thread
from threadloom.cli import app
from threadloom.cli._usage import parse_since, totals
from threadloom.models import PRICES_AS_OF, Completion, ScriptedModel, Usage, cost

DOCS = Path(__file__).parent.parent / "docs" / "observability.md"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store URL of each durable kind, also the default store of the command."""
    url = f"sqlite:///{tmp_path}/threads.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    monkeypatch.setenv("THREADLOOM_STORE", url)
    monkeypatch.setenv("COLUMNS", "80")
    return url


def answer(
    event_type: str, model: str, tokens_in: int, tokens_out: int, cached: int = 0, *, at: datetime | None = None
) -> Event:
    """An event an agent wrote for a model's answer, with the call's model record."""
    record: dict[str, JsonValue] = {
        "name": model,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cached_tokens": cached,
    }
    data: dict[str, JsonValue] = (
        {"intent": "list_git_tags", "arguments": {}, "policy": "auto", "model": record}
        if event_type == "tool_call"
        else {"message": "ok", "model": record}
    )
    return Event(event_type, data, at=at or datetime.now(UTC))


def usage(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, ["usage", *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args and code == 0 else result


def docs_store(url: str) -> None:
    """The store docs/observability.md describes: two deploy-bot threads and a support thread."""
    ask = Event("slack_message", {"text": "deploy the backend"})
    first = [
        answer("tool_call", "gpt-4.1-mini", 12_000, 300, 8_000),
        answer("done_for_now", "gpt-4.1-mini", 13_500, 250, 12_000),
    ]
    second = [
        answer("tool_call", "gpt-4.1-mini", 9_000, 200),
        answer("done_for_now", "SmolLM2-135M-Instruct.Q4_1", 4_000, 120),
    ]
    store_thread(url, [ask, *first], thread_id="th_1", agent="deploy_bot")
    store_thread(url, [ask, *second], thread_id="th_2", agent="deploy_bot")
    ticket = Event("support_ticket", {"text": "refund order A-1001"})
    store_thread(
        url,
        [ticket, answer("done_for_now", "claude-haiku-4-5", 20_000, 900, 15_000)],
        thread_id="th_3",
        agent="support",
    )


def test_the_documented_commands_print_what_the_docs_show(url: str, tmp_path: Path) -> None:
    docs_store(url)
    text = DOCS.read_text()
    section = text[text.index("## Usage and cost") :]
    prices = re.search(r"```yaml\n(.*?)```", section, re.S)
    session = re.search(r"```console\n(.*?)```", section, re.S)
    assert prices is not None and session is not None
    (tmp_path / "prices.yaml").write_text(prices[1])
    commands = re.split(r"^\$ ", session[1], flags=re.M)[1:]
    assert len(commands) == 3
    for block in commands:
        command, _, expected = block.partition("\n")
        words = command.split()
        assert words[0] == "threadloom"
        done = cli(*words[1:], env={"THREADLOOM_STORE": url}, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert [line.rstrip() for line in done.stdout.splitlines()] == expected.splitlines(), command
    assert f"prices: the built-in table of {PRICES_AS_OF.isoformat()}" in session[1]  # the docs name today's table


async def launch_runs(url: str) -> list[Thread]:
    """Real runs: each model answer comes with token counts, as a provider's do."""

    def metered(text: str, model: str, tokens_in: int, tokens_out: int) -> Completion:
        return Completion(text, model, usage=Usage(tokens_in, tokens_out, tokens_in // 2))

    refunds = '{"intent": "refund", "order_id": "A-1", "amount_cents": 100}'
    done = '{"intent": "done_for_now", "message": "asked"}'
    support = Agent(
        name="support",
        model=ScriptedModel([metered(refunds, "gpt-4.1-mini", 1_500, 40)] * 2, name="gpt-4.1-mini"),
        tools=[refund],
    )
    triage = Agent(name="triage", model=ScriptedModel([metered(done, "gpt-5-nano", 800, 25)], name="gpt-5-nano"))
    async with Runtime(store=url, agents=[support, triage]) as runtime:
        ids = [
            await runtime.launch("support", Event("support_ticket", {"text": "refund A-1"})),
            await runtime.launch("support", Event("support_ticket", {"text": "refund A-2"})),
            await runtime.launch("triage", Event("support_ticket", {"text": "what is this?"})),
        ]
        await runtime.run_until_idle()
        return [await runtime.get(thread_id) for thread_id in ids]


def test_each_threads_row_is_its_usage_and_cost_and_every_grouping_adds_up(url: str) -> None:
    threads = asyncio.run(launch_runs(url))
    by_thread = usage("--by", "thread", "--json")
    rows = {row["thread"]: row for row in by_thread["rows"]}
    assert set(rows) == {t.id for t in threads}
    for thread in threads:
        row = rows[thread.id]
        assert (row["requests"], row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (
            thread.usage.requests,
            thread.usage.input_tokens,
            thread.usage.output_tokens,
            thread.usage.cached_tokens,
        )
        assert row["cost"] == pytest.approx(cost(thread).total) and row["cost"] > 0
        assert row["agents"] == [thread.metadata["agent"]]
    agents = {row["agent"]: row for row in usage("--by", "agent", "--json")["rows"]}
    assert {name: row["threads"] for name, row in agents.items()} == {"support": 2, "triage": 1}
    models = {row["model"]: row for row in usage("--json")["rows"]}
    assert set(models) == {"gpt-4.1-mini", "gpt-5-nano"}
    for grouping in (by_thread["rows"], agents.values(), models.values()):
        assert sum(row["input_tokens"] for row in grouping) == by_thread["total"]["input_tokens"] == 3_800
        assert sum(row["cost"] for row in grouping) == pytest.approx(by_thread["total"]["cost"])
    assert by_thread["prices"] == {"built_in_as_of": PRICES_AS_OF.isoformat(), "file": None}
    assert by_thread["threads_read"] == 3 and by_thread["unreadable"] == []
    assert rows[threads[0].id]["cost"] >= rows[threads[2].id]["cost"]  # the costliest first


def test_agent_and_thread_pick_the_threads(url: str) -> None:
    docs_store(url)
    assert [r["thread"] for r in usage("--by", "thread", "--agent", "support", "--json")["rows"]] == ["th_3"]
    picked = usage("--by", "thread", "--thread", "th_2", "--thread", "th_3", "--json")
    assert {r["thread"] for r in picked["rows"]} == {"th_2", "th_3"} and picked["threads_read"] == 2
    both = usage("--by", "thread", "--thread", "th_2", "--thread", "th_3", "--agent", "support", "--json")
    assert [r["thread"] for r in both["rows"]] == ["th_3"]
    missing = usage("--thread", "th_none", code=1)
    assert missing.stdout == "" and "th_none" in missing.stderr and len(missing.stderr.splitlines()) == 1


def test_since_counts_only_the_calls_made_since(url: str) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=30)
    events = [
        Event("slack_message", {"text": "deploy"}, at=old),
        answer("tool_call", "gpt-4.1-mini", 1_000, 10, at=old),
        answer("done_for_now", "gpt-4.1-mini", 2_000, 20, at=now - timedelta(hours=1)),
    ]
    thread = store_thread(url, events, agent="deploy_bot")
    assert usage("--json")["total"]["input_tokens"] == 3_000
    for since in (
        "7d",
        "2h",
        (now - timedelta(days=2)).date().isoformat(),
        f"{now - timedelta(days=2):%Y-%m-%dT%H:%M}",
    ):
        report = usage("--since", since, "--json")
        assert (report["total"]["input_tokens"], report["total"]["requests"]) == (2_000, 1), since
    assert usage("--since", "30m", "--json")["rows"] == []
    text = usage("--since", "2030-01-01").stdout
    assert "0 threads read, 0 with model calls since 2030-01-01 00:00 UTC" in text  # none updated since
    assert thread.usage.input_tokens == 3_000
    bad = usage("--since", "last tuesday", code=2)
    assert "'last tuesday' is neither a date or time" in bad.output


def test_parse_since_reads_spans_back_from_now_and_times_as_utc() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert parse_since("90m", now=now) == datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    assert parse_since("2w", now=now) == datetime(2026, 11, 17, 12, tzinfo=UTC)
    assert parse_since("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_since("2026-11-30T09:00+01:00") == datetime(2026, 11, 30, 8, tzinfo=UTC)


def test_a_price_file_prices_what_the_table_lacks_and_bad_ones_are_refused(url: str, tmp_path: Path) -> None:
    docs_store(url)
    before = usage("--json")
    assert before["total"]["unpriced"] == ["SmolLM2-135M-Instruct.Q4_1"]
    assert "* no price for SmolLM2-135M-Instruct.Q4_1" in usage().stdout
    mine = tmp_path / "prices.json"
    mine.write_text(json.dumps({"SmolLM2-135M-Instruct": [1.0, 2.0], "claude-haiku-4-5": {"input": 0, "output": 0}}))
    after = usage("--prices", str(mine), "--json")
    models = {row["model"]: row for row in after["rows"]}
    assert models["SmolLM2-135M-Instruct.Q4_1"]["cost"] == pytest.approx(4_000 * 1e-6 + 120 * 2e-6)
    assert models["claude-haiku-4-5"]["cost"] == 0 and after["total"]["unpriced"] == []
    assert after["prices"] == {"built_in_as_of": PRICES_AS_OF.isoformat(), "file": str(mine)}
    assert (
        f"prices: the built-in table of {PRICES_AS_OF.isoformat()}, 2 from {mine} over it"
        in usage("--prices", str(mine)).stdout
    )

    bad = tmp_path / "bad.yaml"
    bad.write_text("gpt-x: {input: 1, output: 2, cahced: 0.1}\nmine: [1]\ntheirs: {input: -1, output: 1}\n")
    refused = usage("--prices", str(bad), code=2)
    message = refused.stderr
    assert len(message.splitlines()) == 1 and message.startswith("error: ")
    for problem in (
        "gpt-x.cahced: Extra inputs",
        "mine: Value error, a list must be",
        "theirs.input: Input should be greater",
    ):
        assert problem in message
    (tmp_path / "broken.json").write_text("{not json")
    assert "is not JSON" in usage("--prices", str(tmp_path / "broken.json"), code=2).stderr
    assert "cannot read the price file" in usage("--prices", str(tmp_path / "none.yaml"), code=2).stderr


def test_an_unreadable_thread_is_skipped_and_named_on_stderr(url: str) -> None:
    docs_store(url)
    corrupt(url, "th_1", 1)
    report = usage("--json")
    assert report["unreadable"] == [{"thread_id": "th_1", "error": report["unreadable"][0]["error"]}]
    assert report["threads_read"] == 2 and report["total"]["requests"] == 3
    result = usage()
    assert result.stderr.startswith("skipped thread th_1: ") and "th_1" not in result.stdout


def test_an_empty_store_says_so_and_a_missing_one_is_refused(url: str, tmp_path: Path) -> None:
    store_thread(url, [Event("support_ticket", {"text": "no model yet"})])
    assert usage().stdout.splitlines() == [
        "1 thread read, 0 with model calls",
        f"prices: the built-in table of {PRICES_AS_OF}",
    ]
    assert usage("--json")["rows"] == []
    missing = usage("--store", f"sqlite:///{tmp_path}/none.db", code=1)
    assert "no SQLite store at" in missing.stderr


calls = st.lists(
    st.tuples(
        st.sampled_from(["gpt-4.1-mini", "claude-haiku-4-5", "my-model"]), st.integers(0, 10**6), st.integers(0, 10**5)
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(threads=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), calls), min_size=1, max_size=5))
def test_every_grouping_adds_up_to_the_same_total(
    threads: Sequence[tuple[str, Sequence[tuple[str, int, int]]]],
) -> None:
    async def main() -> None:
        async with Runtime(store="memory://") as runtime:
            store = await runtime.store()
            for agent, made in threads:
                events = [Event("user_input", {"text": "go"}), *(answer("done_for_now", m, i, o) for m, i, o in made)]
                await store.append(Thread(events, metadata={"agent": agent}), after=0)
            reports = [await totals(runtime, by=by) for by in ("thread", "agent", "model")]
        expected = sum(i for _, made in threads for _, i, _ in made)
        for report in reports:
            assert report.total.used.input_tokens == expected
            assert sum(g.used.input_tokens for g in report.groups) == expected
            assert sum(cost(g.usage).total for g in report.groups) == pytest.approx(cost(report.total.usage).total)
            assert report.read == len(threads)

    asyncio.run(main())
