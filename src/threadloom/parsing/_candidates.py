"""The JSON values a model's text may mean, most likely first, each with whether it was cut off.

Candidates come from fenced blocks, each top-level `{...}` / `[...]` and the whole text. Each is
read as JSON first; only what fails is given to `json-repair`, whose time grows faster than the
text's length on some shapes, so it reads at most `REPAIR_BUDGET` characters per answer. Past
the budget only the cheap readings remain (raw newlines in strings allowed, a Python literal);
a larger value that neither reads is not a candidate.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import json_repair
from pydantic import JsonValue

from ._quotes import requote
from ._scan import scan

__all__ = ["NOTHING", "REPAIR_BUDGET", "Candidate", "Finder"]

REPAIR_BUDGET = 4_000
"""Characters `json-repair` may read per answer: within it a repair takes tens of milliseconds."""
_MAX_CANDIDATES = 32
_MAX_LITERAL = 50_000
_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)
_BRACKET = re.compile(r"[{\[]")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One value the text may mean."""

    value: JsonValue
    cut: str | None = None
    """What was cut off when the value's text ran to the end unclosed (None: complete)."""
    snippet: bool = True
    """Whether the value came from a bracketed snippet of the text (not the whole text or a scalar)."""


@dataclass
class Finder:
    """Finds the candidates of one answer, within one repair budget."""

    budget: int = REPAIR_BUDGET
    too_long: int = 0
    """The length of the longest broken value left unrepaired (0: none)."""
    cut_unread: str | None = None
    """Where a snippet that could not be read was cut off (None: none was)."""
    _seen: list[JsonValue] = field(default_factory=list[JsonValue])

    def candidates(self, text: str, *, array: bool) -> list[Candidate]:
        """Every candidate of `text`; `array`: the target is a list (several objects make one)."""
        found: list[Candidate] = []
        stripped = text.strip()
        if stripped[:1] not in ("{", "[", ""):
            whole = _strict(stripped)
            if whole is not NOTHING and not isinstance(whole, str):
                self._add(found, Candidate(whole, snippet=False))  # 42, true: one JSON scalar
        requoted = requote(text)
        for source in (requoted, text) if requoted != text else (text,):
            for snippet, cut, is_snippet in self._snippets(source):
                values = self.load(snippet)
                where = cut() if values or is_snippet else None  # the whole text: only when read
                if where and not values and any(c in snippet for c in "\"':"):
                    self.cut_unread = self.cut_unread or where  # JSON-like, not a stray bracket
                for value in values:
                    self._add(found, Candidate(value, where, is_snippet))
        objects = [c.value for c in found if isinstance(c.value, dict)]
        if array and len(objects) > 1:
            cut = next((c.cut for c in found if c.cut), None)
            found.insert(0, Candidate(cast(JsonValue, objects), cut))  # several objects for a list
        if stripped and stripped not in self._seen and not (stripped[0] in "{[" and found):
            found.append(Candidate(stripped, snippet=False))  # the bare text: scalars, enums, literals
        return found

    def _add(self, found: list[Candidate], candidate: Candidate) -> None:
        if candidate.value not in self._seen and len(found) < _MAX_CANDIDATES:
            self._seen.append(candidate.value)
            found.append(candidate)

    def _snippets(self, text: str) -> Iterator[tuple[str, Callable[[], str | None], bool]]:
        """Each fenced body, each top-level bracketed value, the whole text; with their cut."""
        for match, _ in zip(_FENCE.finditer(text), range(_MAX_CANDIDATES), strict=False):
            body = match.group(1)
            if body.strip():
                yield body, partial(_cut, body), True
        i, count = 0, 0
        while count < _MAX_CANDIDATES and (match := _BRACKET.search(text, i)) is not None:
            result = scan(text, match.start())
            yield text[match.start() : result.end], partial(getattr, result, "cut"), True
            count, i = count + 1, result.end
            if match.start() == 0 and result.end == len(text):
                return  # the one value is the whole text
        yield text, partial(_cut, text), False

    def repair(self, text: str) -> JsonValue:
        """`json-repair`'s reading of `text`, or `NOTHING` (it gave up, or the budget is spent)."""
        if len(text) > self.budget:
            self.too_long = max(self.too_long, len(text))
            return NOTHING
        self.budget -= len(text)
        try:
            return cast(JsonValue, json_repair.loads(text))
        except Exception:  # json-repair gave up on this text
            return NOTHING

    def cut(self, text: str) -> str | None:
        """Whether the JSON in `text` (from its first bracket on) was cut off, and where."""
        return _cut(text)

    def load(self, snippet: str) -> list[JsonValue]:
        """The JSON values `snippet` holds: strict, else repaired within the budget."""
        snippet = snippet.strip()
        if not snippet or snippet[0] not in "{[\"'":
            return []
        value = _strict(snippet, strict=True)
        if value is not NOTHING:
            return [value]
        repaired = self.repair(snippet)
        if repaired is NOTHING:  # over the budget: only the cheap readings
            for reading in (_strict(snippet, strict=False), _python_literal(snippet)):
                if reading is not NOTHING:
                    return [reading]
            return []
        if repaired == "" or repaired is None:
            return []
        if isinstance(repaired, list) and snippet.startswith("{"):
            return cast(list[JsonValue], repaired)  # several objects in a row: each is a candidate
        return [repaired]


def _cut(text: str) -> str | None:
    """Whether the JSON in `text` (from its first bracket on) was cut off, and where."""
    first = _BRACKET.search(text)
    return scan(text, first.start(), whole=True).cut if first else None


NOTHING: Any = object()


def _strict(text: str, *, strict: bool = True) -> JsonValue:
    """`text` as JSON (`strict=False`: raw control characters in strings allowed), or `NOTHING`."""
    try:
        return cast(JsonValue, json.loads(text, strict=strict))
    except (ValueError, RecursionError):
        return NOTHING


def _python_literal(text: str) -> JsonValue:
    """A Python literal (`{'a': True}`) as JSON, read by `ast`, or `NOTHING` (or when too long)."""
    if len(text) > _MAX_LITERAL:
        return NOTHING  # building the syntax tree costs about 0.4 ms per KB
    try:
        value = ast.literal_eval(text)
        return cast(JsonValue, json.loads(json.dumps(value)))
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return NOTHING
