"""The CLI prints text, not markup (issue 13.9): ids, agent names, questions and data with rich's `[...]` syntax
come out as written, never as a crash, a style or a link."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich._emoji_codes import EMOJI
from typer.core import TyperGroup
from typer.testing import CliRunner

from cli_support import cli, store_thread
from threadloom import Event
from threadloom.cli import app

MARKUP = "[/bold][link=https://evil.example]click[/link][bold red]"
THREAD_ID = f"th_{MARKUP}"
AGENT = f"support{MARKUP}"
QUESTION = f"Which {MARKUP} order?"


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/threads.db"
    monkeypatch.setenv("THREADLOOM_STORE", url)
    monkeypatch.setenv("COLUMNS", "500")  # wide enough for every cell on one line
    return url


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.output


def asking(question: str = QUESTION) -> list[Event]:
    return [Event("support_ticket", {"text": MARKUP}), Event("request_human_input", {"question": question})]


def test_markup_in_ids_agent_names_questions_and_data_is_printed_as_written(url: str) -> None:
    store_thread(url, asking(), thread_id=THREAD_ID, agent=AGENT)
    listed = invoke("threads", "ls")
    assert THREAD_ID in listed and AGENT in listed and QUESTION in listed
    shown = invoke("threads", "show", THREAD_ID)
    assert f"thread {THREAD_ID} of agent {AGENT}" in shown
    assert f"waiting for {QUESTION}" in shown and MARKUP in shown
    assert f"thread {THREAD_ID} is waiting_human: {QUESTION}" in shown
    assert f"thread {THREAD_ID} is ready" in invoke("threads", "respond", THREAD_ID, f"yes {MARKUP}")
    refused = invoke("threads", "approve", THREAD_ID, code=1)  # the error line names the id as written
    assert refused == f"error: thread {THREAD_ID!r} is 'ready': nothing waits for a person\n"
    assert f"thread {THREAD_ID} is failed" in invoke("threads", "cancel", THREAD_ID, "--reason", MARKUP)


def test_no_link_reaches_a_terminal(url: str) -> None:
    store_thread(url, asking(), thread_id=THREAD_ID, agent=AGENT)
    store = url
    for command in (["ls"], ["show", THREAD_ID]):
        result = cli("threads", *command, "--store", store, env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
        assert result.returncode == 0, result.stderr
        assert "\x1b]8;" not in result.stdout  # an OSC 8 hyperlink
        assert "[link=https://evil.example]" in result.stdout


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from("[]/=abk \\:#"), max_size=30).map(str.strip).filter(bool))
def test_any_bracketed_text_is_shown_as_it_is(url: str, text: str) -> None:
    thread = store_thread(url, asking(text), agent=text)
    shown = invoke("threads", "show", thread.id)
    assert f"is waiting_human: {text}" in shown
    assert text in invoke("threads", "ls", "--limit", "1")


def test_a_bad_option_value_with_markup_is_shown_as_written(url: str) -> None:
    result = CliRunner().invoke(app, ["threads", "approve", "th_1", "--edit", "[/bold][link]x"])
    assert result.exit_code == 2 and "got '[/bold][link]x'" in result.output


def _commands(group: TyperGroup, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = [path]
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def test_no_help_text_turns_into_an_emoji(monkeypatch: pytest.MonkeyPatch) -> None:
    # rich reads `:name:` as an emoji code: `NAME:SECRET:SCOPES` came out as `NAME㊙SCOPES`.
    monkeypatch.setenv("COLUMNS", "500")
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    emoji = [e for e in EMOJI.values() if not e.isascii()]  # not the digits of the keycaps
    for path in _commands(root):
        shown = invoke(*path, "--help")
        assert [e for e in emoji if e in shown] == [], path
    assert "ops:tlk_...:read+write" in invoke("serve", "--help")
