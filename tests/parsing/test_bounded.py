"""Parsing is bounded: any answer up to MAX_TEXT_LENGTH returns or raises ParseError, whatever its shape.

The time per shape is measured by bench/bench_parsing.py; here only the behaviour is asserted.
"""

from typing import Annotated, Literal

import pytest
from pydantic import Discriminator

from threadloom import DoneForNow, Intent, ParseError, parse
from threadloom.parsing import MAX_TEXT_LENGTH, parse_json_schema


class Deploy(Intent):
    intent: Literal["deploy_backend"] = "deploy_backend"
    tag: str


Step = Annotated[Deploy | DoneForNow, Discriminator("intent")]
N = 199_000


def fill(unit: str) -> str:
    return (unit * (N // len(unit) + 1))[:N]


SHAPES = {
    "nested braces": "{" * 100_000,
    "nested brackets": "[" * N,
    "brace-bracket quotes": '"{[' * 66_000,
    "unclosed quotes": fill('{"a": "b, "c": "d, '),
    "single quotes": fill("{'a': 'b, "),
    "many objects": fill('{"a": 1} '),
    "backticks": fill('{"a": `x, '),
    "fences": fill("```json\n{"),
    "xml calls": fill("<function=deploy_backend><parameter=tag>"),
    "glm calls": fill("<tool_call>deploy_backend<arg_key>"),
    "pythonic": fill("[deploy_backend(tag='"),
    "mistral": fill("[TOOL_CALLS]deploy_backend[ARGS]{"),
    "flat list": "[" + "1, " * 66_000 + "1]",
}


@pytest.mark.parametrize("text", SHAPES.values(), ids=SHAPES.keys())
def test_any_shape_returns_or_raises_parse_error(text: str) -> None:
    assert len(text) <= MAX_TEXT_LENGTH
    try:
        parse(text, Step)
    except ParseError:
        pass
    try:
        parse_json_schema(text, {})
    except ParseError:
        pass


def test_nesting_deeper_than_any_event_holds_is_refused() -> None:
    with pytest.raises(ParseError, match="deep"):
        parse("{" * 100_000, Step)
    with pytest.raises(ParseError, match="deep"):
        parse('{"intent": "deploy_backend", "tag": ' + "[" * 65 + '"v1"' + "]" * 65 + "}", Step)


def test_a_long_valid_answer_still_parses() -> None:
    tag = "v" * 150_000
    assert parse(f'Here: {{"intent": "deploy_backend", "tag": "{tag}"}}', Step) == Deploy(tag=tag)


def test_a_long_broken_answer_is_refused_with_a_reason() -> None:
    text = '{"intent": "deploy_backend", "tag": "v1", ' + '"x": 1,,' * 10_000 + "}"
    with pytest.raises(ParseError, match="too long to repair"):
        parse(text, Step)
