"""A cut-off answer is never taken as complete (docs/04 states the rule and its cases)."""

import json
from typing import Annotated, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Discriminator

from threadloom import DoneForNow, Intent, ParseError, parse


class RunCommands(Intent):
    intent: Literal["run_commands"] = "run_commands"
    commands: list[str]
    replicas: int = 1


Step = Annotated[RunCommands | DoneForNow, Discriminator("intent")]
FENCE = "`" * 3


@pytest.mark.parametrize(
    "text",
    [
        '{"intent": "run_commands", "commands": ["npm install", "npm test"',  # the answer
        '{"intent": "run_commands", "commands": ["npm install", "npm te',
        '{"intent": "run_commands", "commands": ["npm install"], "replicas": 1',  # 1 may have been 10
        '{"intent": "run_commands", "commands": ["npm install"], "replicas":',
        '{"intent": "run_commands", "commands": ["npm install"],',
        '{"intent": "run_commands", "commands": ["npm install"], "repl',
        '{"intent": "done_for_now", "message": "Deployed v1.2',
        f'{FENCE}json\n{{"intent": "run_commands", "commands": ["npm install", "npm test"',
        'Running them now: {"intent": "run_commands", "commands": ["a", "b"',
        "{'intent': 'run_commands', 'commands': ['npm install', 'npm test'",
    ],
)
def test_an_answer_that_stops_inside_a_string_a_list_or_before_a_value_is_cut_off(text: str) -> None:
    with pytest.raises(ParseError, match="cut off") as caught:
        parse(text, Step)
    assert caught.value.cut_off


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"intent": "done_for_now", "message": "Deployed."', DoneForNow(message="Deployed.")),
        ('{"intent": "run_commands", "commands": ["npm test"]', RunCommands(commands=["npm test"])),
        ('{"intent": "run_commands", "commands": ["a"], "replicas": 3\n', RunCommands(commands=["a"], replicas=3)),
        (f'{FENCE}json\n{{"intent": "done_for_now", "message": "ok"\n{FENCE}', DoneForNow(message="ok")),
    ],
)
def test_only_missing_closing_braces_of_objects_are_forgiven(text: str, expected: Intent) -> None:
    assert parse(text, Step) == expected


def test_native_tool_call_arguments_cut_off_are_refused_too() -> None:
    # What a client hands `parse` for a tool call whose arguments JSON was cut (models/openai.py).
    with pytest.raises(ParseError) as caught:
        parse('{"intent": "run_commands", "commands": ["npm install", "npm test"', Step)
    assert caught.value.cut_off


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4), st.data())
def test_no_prefix_cut_inside_the_list_is_accepted(commands: list[str], data: st.DataObject) -> None:
    text = json.dumps({"intent": "run_commands", "commands": commands, "replicas": 2})
    start = text.index("[") + 1
    end = text.index("]")
    cut = data.draw(st.integers(min_value=start, max_value=end - 1))
    with pytest.raises(ParseError):
        parse(text[:cut], Step)


def test_a_complete_answer_is_not_cut_off() -> None:
    with pytest.raises(ParseError) as caught:
        parse('{"intent": "run_commands"}', Step)
    assert not caught.value.cut_off
