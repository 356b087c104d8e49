"""Token counting: the stated estimate, a wrapped tokenizer, and message totals."""

import math
import sys

import pytest

from threadloom.context import Message, ToolCall
from threadloom.tokens import (
    MESSAGE_OVERHEAD,
    EstimatedCounter,
    TokenCounter,
    TokenizerCounter,
    count_messages,
    default_counter,
)


class CharCounter:
    """One token a character: makes totals easy to compute by hand."""

    name = "characters"
    exact = True

    def count(self, text: str) -> int:
        return len(text)


def test_estimated_counter_says_it_is_an_estimate() -> None:
    counter = EstimatedCounter()
    assert counter.exact is False
    assert "estimate" in counter.name
    assert isinstance(counter, TokenCounter)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("abcdefgh", 2), ("abcdefghi", 3), ("é" * 7, 2)],
)
def test_estimated_counter_is_ceil_of_a_quarter_of_the_length(text: str, tokens: int) -> None:
    assert EstimatedCounter().count(text) == tokens == math.ceil(len(text) / 4)


def test_tokenizer_counter_counts_what_encode_returns() -> None:
    seen: list[str] = []

    def encode(text: str) -> list[int]:
        seen.append(text)
        return [ord(c) for c in text.split()]  # one token a word (each word one char here)

    counter = TokenizerCounter("words", encode)
    assert counter.name == "words"
    assert counter.exact is True
    assert isinstance(counter, TokenCounter)
    assert counter.count("a b c") == 3
    assert counter.count("") == 0
    assert seen == ["a b c", ""]


def test_tokenizer_counter_accepts_any_sized_result() -> None:
    counter = TokenizerCounter("bytes", lambda text: text.encode())
    assert counter.count("héllo") == 6


def test_count_messages_adds_an_overhead_per_message() -> None:
    assert MESSAGE_OVERHEAD == 4
    counter = CharCounter()
    assert count_messages([], counter) == 0
    assert count_messages([Message("user", "")], counter) == 4
    assert count_messages([Message("system", "abc"), Message("user", "hello")], counter) == 4 + 3 + 4 + 5


def test_count_messages_counts_tool_call_names_and_arguments() -> None:
    counter = CharCounter()
    call = ToolCall(id="ev_1", name="deploy", arguments='{"tag": "v1"}')
    messages = [
        Message("assistant", "", tool_calls=(call, ToolCall(id="ev_2", name="ls", arguments="{}"))),
        Message("tool", "ok", tool_call_id="ev_1"),
    ]
    # the call id is not counted; the tool_call_id is not either
    assert count_messages(messages, counter) == (4 + 0 + 6 + 13 + 2 + 2) + (4 + 2)


def test_count_messages_with_the_estimate() -> None:
    messages = [Message("user", "abcde"), Message("assistant", "abc")]
    assert count_messages(messages, EstimatedCounter()) == (4 + 2) + (4 + 1)


def test_default_counter_is_a_token_counter() -> None:
    counter = default_counter()
    assert isinstance(counter, TokenCounter)
    assert isinstance(counter.count("hello world"), int)
    assert counter.count("") == 0


def test_default_counter_falls_back_to_the_estimate_without_bpe_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bpe_openai", None)  # what an environment without the extra sees
    counter = default_counter()
    assert isinstance(counter, EstimatedCounter)
    assert counter.exact is False


def test_default_counter_uses_bpe_openai_when_installed() -> None:
    pytest.importorskip("bpe_openai")
    counter = default_counter()
    assert isinstance(counter, TokenizerCounter)
    assert counter.name == "o200k_base"
    assert counter.exact is True
    assert 0 < counter.count("deploy the backend to production") < 32
