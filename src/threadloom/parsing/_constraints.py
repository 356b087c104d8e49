"""`@assert` constraints carried in a schema's `x-baml-constraints` (BAML's vendor keyword).

Schemas translated from BAML keep their `@assert(name, {{ expression }})` lines there (`@@assert` on a whole class); a value that
breaks one must not parse. Only the simple comparisons such schemas use are understood:
`this`, `this.field`, optionally `|length`, compared with a JSON literal (`this|length > 0`,
`this.foo >= 0`, `this == "TWO"`), and the literals `true` / `false`. An expression outside that
subset is not judged (it holds). `@check` lines are reports, not rules, and are ignored.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, cast

from pydantic import JsonValue

__all__ = ["asserts_hold"]

_ASSERT = re.compile(r"^@@?assert\(\s*\w+\s*,\s*\{\{(.*)\}\}\s*\)$", re.DOTALL)
_COMPARISON = re.compile(r"^this((?:\.\w+)*)(\|length)?\s*(==|!=|>=|<=|>|<)\s*(.+)$", re.DOTALL)
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_UNKNOWN = object()


def asserts_hold(value: JsonValue, schema: Mapping[str, Any]) -> bool:
    """Whether `value` keeps every understood `@assert` of `schema`."""
    lines = schema.get("x-baml-constraints")
    if not isinstance(lines, list):
        return True
    for line in cast(list[object], lines):
        match = _ASSERT.match(str(line).strip())
        if match and _evaluate(match.group(1).strip(), value) is False:
            return False
    return True


def _evaluate(expression: str, value: JsonValue) -> bool | None:
    if expression in ("true", "false"):
        return expression == "true"
    match = _COMPARISON.match(expression)
    if not match:
        return None
    path, length, op, literal = match.groups()
    subject: object = value
    for name in filter(None, path.split(".")):
        subject = cast(dict[str, object], subject).get(name, _UNKNOWN) if isinstance(subject, dict) else _UNKNOWN
    if length and isinstance(subject, str | list | dict):
        subject = len(cast(Any, subject))
    try:
        expected = json.loads(literal.strip().replace('\\"', '"'))
        return bool(_OPERATORS[op](subject, expected)) if subject is not _UNKNOWN else None
    except (ValueError, TypeError):
        return None
