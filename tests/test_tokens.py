"""Token counting: the stated estimate, a wrapped tokenizer, and message totals."""

import math
import sys

import pytest

from threadloom import UserError
from threadloom.context import Message, ToolCall
from threadloom.tokens import (
    MESSAGE_OVERHEAD,
    EstimatedCounter,
    TokenCounter,
    TokenizerCounter,
    count_messages,
    counter_for_model,
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


def test_both_openai_vocabularies_count_offline_and_differ_where_they_should() -> None:
    pytest.importorskip("bpe_openai")
    o200k, cl100k = default_counter("o200k_base"), default_counter("cl100k_base")
    assert (o200k.name, cl100k.name) == ("o200k_base", "cl100k_base")
    assert o200k.exact and cl100k.exact
    assert o200k.count("hello world") == cl100k.count("hello world") == 2
    hindi = "नमस्ते दुनिया, यह एक परीक्षण है"  # o200k's larger vocabulary covers more scripts
    assert o200k.count(hindi) < cl100k.count(hindi)


def test_an_unknown_encoding_is_a_user_error() -> None:
    with pytest.raises(UserError, match="'o200k_base' or 'cl100k_base'"):
        default_counter("p50k_base")  # pyright: ignore[reportArgumentType]


@pytest.mark.parametrize(
    ("model", "name", "exact"),
    [
        ("gpt-4.1-mini-2025-04-14", "o200k_base", True),
        ("openai/gpt-4o", "o200k_base", True),
        ("o4-mini", "o200k_base", True),
        ("gpt-4-turbo", "cl100k_base", True),
        ("gpt-3.5-turbo", "cl100k_base", True),
        ("claude-sonnet-4-5", "o200k_base (approximating claude-sonnet-4-5)", False),
    ],
)
def test_counter_for_model_picks_the_models_vocabulary(model: str, name: str, exact: bool) -> None:
    pytest.importorskip("bpe_openai")
    counter = counter_for_model(model)
    assert (counter.name, counter.exact) == (name, exact)
    assert counter.count("deploy the backend") == default_counter().count("deploy the backend")


def test_counter_for_model_is_the_estimate_without_bpe_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bpe_openai", None)
    assert isinstance(counter_for_model("gpt-4.1"), EstimatedCounter)
    assert isinstance(counter_for_model("llama-3"), EstimatedCounter)
