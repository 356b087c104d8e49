"""Pick one enum or literal value out of free text ("**One** is the answer" -> "ONE").

Models often answer a choice with a sentence. A value counts as chosen when it is mentioned more
often than any other, first comparing case-sensitively, then case-insensitively; accents and
punctuation never count (`cafe` is `café`, `k-2-3 1_1` is `k-2-3.1_1`). A longer name hides the
shorter names inside it (`car-2` is not also a mention of `car`). A tie is no answer. A mention
within three words after a negation (`not production`, `don't use staging`) is no vote for it: a
text that only refuses options chooses none, rather than the one it refused.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from pydantic import JsonValue

__all__ = ["choose", "fold", "literal_names"]

_PUNCTUATION = re.compile(r"[\W_]+")
_NEGATIONS = frozenset({"not", "no", "never", "nor", "without", "except", "dont", "cannot"})
_WINDOW = 48  # characters before a mention in which its three words before are looked for


def fold(text: str, *, case: bool = False) -> str:
    """`text` without accents and punctuation (each run of non-alphanumerics becomes one space)."""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    spaced = _PUNCTUATION.sub(" ", stripped).strip()
    return spaced if case else spaced.casefold()


def choose(text: str, names: Mapping[str, Sequence[str]], *, case_first: bool = True) -> str | None:
    """The option whose names `text` mentions most, or None when none or several tie.

    Args:
        text: The model's text.
        names: Option -> the names it may be mentioned by.
        case_first: Try a case-sensitive count before the case-insensitive one.
    """
    for case in (True, False) if case_first else (False,):
        counts = _count(fold(text, case=case), names, case)
        if counts:
            best = max(counts.values())
            winners = [option for option, n in counts.items() if n == best]
            if len(winners) == 1:
                return winners[0]
            if case:
                continue
    return None


def _count(haystack: str, names: Mapping[str, Sequence[str]], case: bool) -> dict[str, int]:
    # 1 at each position a counted (longer) name covers: a check reads only its own match, not every span before it.
    covered = bytearray(len(haystack))
    counts: dict[str, int] = {}
    pairs = [(fold(name, case=case), option) for option, option_names in names.items() for name in option_names]
    for needle, option in sorted(pairs, key=lambda pair: -len(pair[0])):
        if not needle:
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack):
            start, end = match.span()
            if covered.find(1, start, end) != -1:
                continue  # inside a longer name already counted
            covered[start:end] = b"\x01" * (end - start)
            if not negated(haystack, start):
                counts[option] = counts.get(option, 0) + 1
    return counts


def negated(haystack: str, start: int) -> bool:
    """Whether one of the three words before `start` of a folded text negates what follows."""
    words = haystack[max(0, start - _WINDOW) : start].casefold().split()
    if start > _WINDOW:
        words = words[1:]  # the window may have cut its first word
    words = words[-4:]  # the three words before, and the one before them (for "don t")
    for i in range(max(0, len(words) - 3), len(words)):
        # "don't" folds to "don t": a lone `t` after a word ending in `n`
        if words[i] in _NEGATIONS or (words[i] == "t" and i > 0 and words[i - 1].endswith("n")):
            return True
    return False


def literal_names(options: Sequence[JsonValue], aliases: Mapping[str, JsonValue]) -> dict[str, list[str]]:
    """The names each string option may be mentioned by: its alias when it has one, else itself."""
    names: dict[str, list[str]] = {}
    for option in options:
        if isinstance(option, str):
            alias = aliases.get(option)
            names[option] = [alias] if isinstance(alias, str) else [option]
    return names
