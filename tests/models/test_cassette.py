"""Cassettes: record a model's answers to YAML, replay them with no model, refuse a changed request with a diff."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from inline_snapshot import snapshot
from test_openai import Wire, llama, llama_server, wire  # noqa: F401  # pyright: ignore[reportUnusedImport]  (`wire` is a fixture)

from threadloom import Agent, Message, Thread, UserError, tool
from threadloom.models import Completion, Model, ModelRequest, ScriptedModel, ToolDefinition, Usage
from threadloom.models.cassette import MODE_ENV, Cassette, CassetteMismatch, dump, render_request

DONE = '{"intent": "done_for_now", "message": "Deployed v1.2.3."}'
DEPLOY = '{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}'


@tool(policy="approval")
def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
    """Deploy a tagged backend version to an environment."""
    return f"deployed {tag} to {environment}"


def make_agent(model: Model, instructions: str = "You are a deploy bot.") -> Agent:
    return Agent(name="deployer", model=model, tools=[deploy_backend], instructions=instructions)


def start() -> Thread:
    return Thread.start("slack_message", {"text": "deploy the backend to production"})


class Keeping:
    """Wraps a model and keeps its completions, to compare live answers with replayed ones."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.completions: list[Completion] = []

    @property
    def name(self) -> str:
        return self.inner.name

    async def complete(self, request: ModelRequest) -> Completion:
        completion = await self.inner.complete(request)
        self.completions.append(completion)
        return completion


def shape(thread: Thread) -> list[tuple[str, Any]]:
    """A thread's events without their ids and times (fresh in every run)."""
    return [(e.type, e.data) for e in thread.events]


def record(path: Path, outputs: Sequence[str], instructions: str = "You are a deploy bot.") -> Thread:
    with Cassette(path, ScriptedModel(outputs, name="gpt-test"), mode="record") as model:
        return make_agent(model, instructions).run_sync(start())


def test_an_unchanged_prompt_replays_with_no_model(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    live = record(path, [DEPLOY])
    with Cassette(path, mode="replay") as model:
        replayed = make_agent(model).run_sync(start())
    assert shape(replayed) == shape(live) and replayed.status == "waiting_approval"
    assert model.name == "gpt-test" and model.recorded_count == 0


def test_a_changed_prompt_fails_the_replay_with_a_readable_diff(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    record(path, [DEPLOY])
    agent = make_agent(Cassette(path, mode="replay"), instructions="You are a careful deploy bot.")
    # Not a ModelError: the loop does not record it and go on, the run (and so the test) fails.
    with pytest.raises(CassetteMismatch) as raised:
        agent.run_sync(start())
    diff = raised.value.diff
    assert "--- cassette interaction 1" in diff and "+++ request 1" in diff
    assert "-You are a deploy bot." in diff and "+You are a careful deploy bot." in diff
    assert "mode='update'" in str(raised.value) and isinstance(raised.value, AssertionError)


def test_a_request_past_the_end_of_the_cassette_says_so(tmp_path: Path) -> None:
    path = tmp_path / "done.yaml"
    with Cassette(path, ScriptedModel([DONE]), mode="record") as model:
        make_agent(model).run_sync(start())
    agent = make_agent(Cassette(path, mode="replay"))
    assert agent.run_sync(start()).status == "done"
    with pytest.raises(CassetteMismatch, match="holds 1 interactions and this run used them all"):
        agent.run_sync(start())


def test_update_re_records_only_what_changed_and_drops_the_stale(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    first = Thread.start("slack_message", {"text": "deploy to production"})
    second = Thread.start("slack_message", {"text": "deploy to staging"})
    with Cassette(path, ScriptedModel([DEPLOY, DEPLOY]), mode="record") as model:
        agent = make_agent(model)
        agent.run_sync(first)
        agent.run_sync(second)
    changed = Thread.start("slack_message", {"text": "deploy to staging, please"})
    inner = ScriptedModel([DONE])
    with Cassette(path, inner, mode="update") as model:
        agent = make_agent(model)
        agent.run_sync(first)
        agent.run_sync(changed)
    assert inner.remaining == 0 and model.recorded_count == 1  # one call: the changed request only
    texts = [i["request"]["messages"][-1]["content"] for i in yaml.safe_load(path.read_text())["interactions"]]
    assert len(texts) == 2 and "deploy to production" in texts[0] and "staging, please" in texts[1]
    with Cassette(path, mode="replay") as model:
        assert make_agent(model).run_sync(changed).status == "done"


def test_auto_records_once_then_replays_and_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "auto.yaml"
    assert Cassette(path, ScriptedModel([DONE])).mode == "record"
    record(path, [DONE])
    assert Cassette(path).mode == "replay"
    monkeypatch.setenv(MODE_ENV, "update")
    assert Cassette(path, ScriptedModel([])).mode == "update"
    monkeypatch.setenv(MODE_ENV, "sometimes")
    with pytest.raises(UserError, match="use replay, record or update"):
        Cassette(path)


def test_misuse_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        Cassette(tmp_path / "missing.yaml", mode="replay")
    with pytest.raises(UserError, match="needs model="):
        Cassette(tmp_path / "x.yaml", mode="record")
    with pytest.raises(UserError, match="mode 'often'"):
        Cassette(tmp_path / "x.yaml", mode="often")  # pyright: ignore[reportArgumentType]
    (tmp_path / "bad.yaml").write_text("interactions: 3\n")
    with pytest.raises(UserError, match="no `interactions` list"):
        Cassette(tmp_path / "bad.yaml")


class CutOff:
    """A model whose answer stops at its token limit, as a provider reports it."""

    name = "cut-off"
    strategy = "prompted"

    async def complete(self, request: ModelRequest) -> Completion:
        text = '{"intent": "deploy_backend", "tag": "v1.2'
        return Completion(text, "cut-off-1", usage=Usage(40, 16), latency_ms=12.5, stop_reason="length")


async def test_a_cut_off_answer_is_replayed_with_its_stop_reason_and_judged_the_same(tmp_path: Path) -> None:
    path = tmp_path / "cut.yaml"
    live_model = Keeping(CutOff())
    with Cassette(path, live_model, mode="record") as model:
        live = await make_agent(model).step(start())
    with Cassette(path, mode="replay") as model:
        replay_model = Keeping(model)
        replayed = await make_agent(replay_model).step(start())
    assert replay_model.completions == live_model.completions  # stop reason, usage and latency as recorded
    assert replay_model.completions[0].stop_reason == "length"
    assert (replayed.type, replayed.data) == (live.type, live.data)


def test_a_failed_run_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "keep.yaml"
    record(path, [DONE])
    before = path.read_text()
    with pytest.raises(RuntimeError), Cassette(path, ScriptedModel([DEPLOY]), mode="record") as model:
        make_agent(model).run_sync(start())
        raise RuntimeError("the test failed")
    assert path.read_text() == before


def test_the_file_reads_as_the_prompt_does() -> None:
    document = {"interactions": [{"request": {"messages": [{"role": "user", "content": "line one\nline two"}]}}]}
    assert "      content: |-\n        line one\n        line two\n" in dump(document)
    record_ = {"model": "m", "settings": {"max_tokens": 5}, "messages": [{"role": "system", "content": "a\nb"}]}
    assert render_request(record_) == 'model: m\nsettings: {"max_tokens": 5}\n[system]\na\nb'


@given(st.text())
def test_any_string_survives_the_yaml_round_trip(text: str) -> None:
    assert yaml.safe_load(dump({"content": text})) == {"content": text}


@given(st.lists(st.tuples(st.sampled_from(["system", "user", "assistant"]), st.text()), min_size=1, max_size=4))
def test_a_recorded_request_compares_equal_after_the_round_trip(messages: list[tuple[Any, str]]) -> None:
    from threadloom.models.cassette import _key, _request_key, request_record  # pyright: ignore[reportPrivateUsage]

    request = ModelRequest(
        messages=tuple(Message(role, text) for role, text in messages),
        output_schema={"type": "object"},
        intent_names=("done_for_now",),
        tools=(ToolDefinition("done_for_now", "Finish.", MappingProxyType({"type": "object", "required": ("a",)})),),
        settings={"temperature": 0.0},
    )
    recorded = request_record("m", request)
    assert yaml.safe_load(dump(recorded)) == recorded
    # Replay's one-dump key is the readable record's canonical JSON (and so the loaded file's).
    assert _request_key("m", request) == _key(recorded) == _key(yaml.safe_load(dump(recorded)))


async def test_a_cassette_recorded_from_llama_cpp_replays_bit_exactly(
    llama_server: str,  # noqa: F811 - the session's server, shared with test_openai
    wire: Wire,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "llama.yaml"
    served, _ = llama(llama_server, wire, strategy="prompted")
    live_model = Keeping(served)
    with Cassette(path, live_model, mode="record") as model:
        live = await make_agent(model).step(start())
    text = path.read_text()
    with Cassette(path, mode="replay") as model:
        replay_model = Keeping(model)
        replayed = await make_agent(replay_model).step(start())
    assert replay_model.completions == live_model.completions and live_model.completions[0].usage.input_tokens > 0
    assert (replayed.type, replayed.data) == (live.type, live.data)
    assert path.read_text() == text  # replay writes nothing


def test_the_rendered_prompt_is_pinned_where_it_is_reviewed() -> None:
    from threadloom.models.cassette import request_record

    record_ = request_record("gpt-test", make_agent(ScriptedModel([])).request(start()))
    prompt = render_request({"model": record_["model"], "messages": record_["messages"]})
    assert prompt == snapshot("""\
model: gpt-test
[system]
You are a deploy bot.

You decide the next step. Always answer with exactly one JSON object and nothing else; its "intent" field names the step. Finishing and asking a person are intents too.

The intents:
- deploy_backend: Deploy a tagged backend version to an environment. (a person approves it before it runs)
  {"intent": "deploy_backend", "tag": string, "environment": "staging" | "production"}
- done_for_now: Finish: the work is done, or there is nothing more to do until someone writes again.
  {"intent": "done_for_now", "message": string /* what to tell the human: the outcome, in a sentence or two */}
- request_more_information: Ask the human who asked for clarification before going on.
  {"intent": "request_more_information", "message": string /* the question to ask */}
- request_human_input: Ask a person a question and wait for the answer.
  {"intent": "request_human_input", "question": string /* the question, in one sentence */, "context"?: string /* what the person needs to know to answer */, "urgency"?: "low" | "medium" | "high", "format"?: "free_text" | "yes_no" | "multiple_choice", "choices"?: [string, ...] /* the options, for multiple_choice */}
[user]
<slack_message>text: deploy the backend to production</slack_message>

What is the next step? Answer with one JSON object.\
""")
