from __future__ import annotations

import re
import sys
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadloom import Intent, ParseError, parse
from threadloom.parsing import _mentions
from threadloom.parsing._mentions import (
    _count,  # pyright: ignore[reportPrivateUsage]
    choose,
    fold,
    literal_names,
    negated,
)

if TYPE_CHECKING:
    from _typeshed import TraceFunction


NAMES = {"ONE": ["ONE"], "TWO": ["TWO"], "THREE": ["THREE"]}


def test_fold_drops_accents_punctuation_and_case() -> None:
    assert fold("Café-Crème_2.0") == "cafe creme 2 0"
    assert fold("Café", case=True) == "Cafe"


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("The answer is **two**", "TWO"),
        ('"TWO" is one of the answers', "TWO"),  # the case-sensitive count decides
        ("one, then one again, then two", "ONE"),  # the most mentions win
        ("nothing relevant", None),
        ("ONE or TWO", None),  # a tie is no answer
    ],
)
def test_choose(text: str, chosen: str | None) -> None:
    assert choose(text, NAMES) == chosen


def test_a_longer_name_hides_the_shorter_inside_it() -> None:
    names = {"car": ["car"], "car-2": ["car-2"]}
    assert choose("I pick car-2", names) == "car-2"
    assert choose("not car or car-2", names) is None


ENVIRONMENTS = {"staging": ["staging"], "production": ["production"]}


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("not production", None),  # a refusal chooses nothing, neither the refused nor the other
        ("do not use production", None),
        ("never staging!", None),
        ("staging, not production", "staging"),
        ("Don't deploy to production; use staging", "staging"),
        ("production, no rollback", "production"),  # the negation comes after
        ("not now, later we go to production", "production"),  # more than three words before
    ],
)
def test_a_negated_mention_is_no_vote(text: str, chosen: str | None) -> None:
    assert choose(text, ENVIRONMENTS) == chosen


def test_a_refused_value_fails_to_parse_rather_than_reading_as_itself() -> None:
    class Deploy(Intent):
        intent: Literal["deploy"] = "deploy"
        environment: Literal["staging", "production"]

    with pytest.raises(ParseError, match="environment"):
        parse('{"intent": "deploy", "environment": "not production"}', Deploy)
    assert parse('{"intent": "deploy", "environment": "staging, not production"}', Deploy).environment == "staging"
    assert parse("The answer is true.", bool) is True
    with pytest.raises(ParseError):
        parse("The answer is not true.", bool)


def test_aliases_replace_names() -> None:
    names = literal_names(["ONE", "TWO", 3], {"ONE": "k1"})
    assert names == {"ONE": ["k1"], "TWO": ["TWO"]}
    assert choose("k1 is best", names) == "ONE"


def old_count(haystack: str, names: dict[str, list[str]], case: bool) -> dict[str, int]:
    """The readable definition `_count` keeps: each match checked against every span counted before."""
    spans: list[tuple[int, int]] = []
    counts: dict[str, int] = {}
    pairs = [(fold(name, case=case), option) for option, option_names in names.items() for name in option_names]
    for needle, option in sorted(pairs, key=lambda pair: -len(pair[0])):
        if not needle:
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack):
            start, end = match.span()
            if any(s < end and start < e for s, e in spans):
                continue
            spans.append((start, end))
            if not negated(haystack, start):
                counts[option] = counts.get(option, 0) + 1
    return counts


WORDS = st.sampled_from(["car", "car-2", "2", "car 2 car", "a", "a a", "b", "ab", "Car", "é"])


@given(
    words=st.lists(st.one_of(WORDS, st.text(alphabet="ab2- é", max_size=4)), max_size=30),
    names=st.dictionaries(st.sampled_from(["X", "Y", "Z"]), st.lists(WORDS, min_size=1, max_size=3), max_size=3),
    case=st.booleans(),
)
def test_counting_mentions_matches_its_readable_definition(
    words: list[str], names: dict[str, list[str]], case: bool
) -> None:
    haystack = fold(" ".join(words), case=case)
    assert _count(haystack, names, case) == old_count(haystack, names, case)


class TooManySteps(Exception):
    pass


def lines_run(call: Callable[[], object], budget: int) -> int:
    """How many lines of `_mentions` run during `call`; raises `TooManySteps` past `budget`."""
    run = 0

    def trace(frame: FrameType, event: str, arg: object) -> TraceFunction | None:
        nonlocal run
        if frame.f_code.co_filename != _mentions.__file__:
            return None
        if event == "line":
            run += 1
            if run > budget:
                raise TooManySteps
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(previous)
    return run


def test_counting_mentions_is_linear_in_the_text() -> None:
    # Each of thousands of mentions used to be checked against every mention before it.
    text = "fast " * 5_000
    names = {"fast": ["fast"], "slow": ["slow"]}
    assert lines_run(lambda: choose(text, names), budget=20 * len(text)) > 0
    assert parse("fast " * 40_000, Literal["fast", "slow"]) == "fast"  # 200 KB, the longest answer parsed
