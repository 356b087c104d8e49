"""Open models' tool-call dialects, from the cases in dialects.jsonl (each row cites its source)."""

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import Discriminator

from threadloom import DoneForNow, Intent, ParseError, parse
from threadloom.parsing import parse_json_schema

ROWS = [json.loads(line) for line in (Path(__file__).parent / "dialects.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_each_dialect_case_parses_exactly_or_is_refused(row: dict[str, Any]) -> None:
    if row["expect_error"]:
        with pytest.raises(ParseError) as caught:
            parse_json_schema(row["raw"], row["schema"])
        assert caught.value.cut_off is row["cut_off"], str(caught.value)
    else:
        value = parse_json_schema(row["raw"], row["schema"])
        assert json.dumps(value, sort_keys=True) == json.dumps(row["expected"], sort_keys=True)


def test_every_case_names_its_source() -> None:
    assert all(row["source"].strip() for row in ROWS)
    assert {row["dialect"] for row in ROWS} >= {"hermes_json", "qwen3_coder_xml", "pythonic", "glm", "mistral"}


class Configure(Intent):
    intent: Literal["configure"] = "configure"
    replicas: int
    dry_run: bool = False
    tags: list[str] = []
    note: str = ""


Step = Annotated[Configure | DoneForNow, Discriminator("intent")]


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>\n<function=configure>\n<parameter=replicas>\n2\n</parameter>\n<parameter=dry_run>\nTrue\n"
        "</parameter>\n<parameter=tags>\n['a', 'b']\n</parameter>\n<parameter=note>\n2\n</parameter>\n</function>\n</tool_call>",
        "<tool_call>configure<arg_key>replicas</arg_key><arg_value>2</arg_value><arg_key>dry_run</arg_key>"
        '<arg_value>true</arg_value><arg_key>tags</arg_key><arg_value>["a", "b"]</arg_value>'
        "<arg_key>note</arg_key><arg_value>2</arg_value></tool_call>",
        "[configure(replicas=2, dry_run=True, tags=['a', 'b'], note='2')]",
        '<tool_call>\n{"name": "configure", "arguments": {"replicas": 2, "dry_run": true, "tags": ["a", "b"], "note": "2"}}\n</tool_call>',
        '[TOOL_CALLS]configure[ARGS]{"replicas": 2, "dry_run": true, "tags": ["a", "b"], "note": "2"}',
        '[TOOL_CALLS][{"name": "configure", "arguments": {"replicas": 2, "dry_run": true, "tags": ["a", "b"], "note": "2"}}]',
    ],
    ids=["qwen3-coder", "glm", "pythonic", "hermes", "mistral-args", "mistral-list"],
)
def test_every_dialect_reads_into_the_same_typed_intent(text: str) -> None:
    assert parse(text, Step) == Configure(replicas=2, dry_run=True, tags=["a", "b"], note="2")


@pytest.mark.parametrize(
    "text",
    [
        "[print(replicas=2)]",  # not an offered tool
        '<tool_call>\n{"name": "rm_rf", "arguments": {}}\n</tool_call>',
        "<function=rm_rf>\n<parameter=path>\n/\n</parameter>\n</function>",
        "I could call configure here, but first: which replicas?",  # a mention is no call
        "[configure(2)]",  # positional arguments name nothing
        "[configure(replicas=__import__('os').getpid())]",  # never evaluated
    ],
)
def test_nothing_else_is_guessed_into_a_call(text: str) -> None:
    with pytest.raises(ParseError):
        parse(text, Step)


def test_several_calls_are_refused_with_the_names() -> None:
    with pytest.raises(ParseError, match="exactly one tool.*you called 2: configure, done_for_now"):
        parse("[configure(replicas=1), done_for_now(message='ok')]", Step)


def test_a_call_of_a_tool_not_offered_says_which_name_was_wrong() -> None:
    with pytest.raises(ParseError, match="unknown intent 'read_file'; \"intent\" must be one of: configure"):
        parse('<tool_call>{"name": "read_file", "arguments": {"path": "a.py"}}</tool_call>', Step)
