"""Redaction: what counts as a secret, and how it is kept out of every rendering (factor 3).

A value is secret when it sits under a secret key (`password`, `api_key`, `Authorization`, ...), is
the value of a secret header pair (`["Authorization", "Bearer ..."]`) or of a name/value entry
(`{"name": "API_KEY", "value": ...}`), is a pydantic `SecretStr`/`SecretBytes`, or is the password
(or a secret query parameter) of a URL. Each secret string of at least `MIN_KNOWN_SECRET`
characters is then known: it is replaced wherever else it appears in the same rendering, such as
a token quoted inside a free-text field.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Collection, Iterable
from typing import cast

from pydantic import JsonValue, SecretBytes, SecretStr

__all__ = ["DEFAULT_SECRET_PATTERN", "MIN_KNOWN_SECRET", "REDACTED", "Redactor", "redact", "redact_with"]

REDACTED = "[REDACTED]"
DEFAULT_SECRET_PATTERN = re.compile(
    r"passw(or)?d|passphrase|pwd|secret|api[-_]?key|access[-_]?key|token|jwt|bearer|cookie|credential"
    r"|auth(?!or(?!i[sz]))|session[-_]?id|private[-_]?key",
    re.IGNORECASE,
)
"""Keys whose values never reach a model: matched anywhere in the key (`access_token`, `X-Api-Key`,
`basic_auth`), except that `author` and `authority` are not `auth`."""
MIN_KNOWN_SECRET = 6
"""Secret strings this long or longer are also redacted where they appear inside other values."""

_SECRET_TYPES = (SecretStr, SecretBytes)
_NAME_FIELDS = ("name", "Name", "key", "Key", "header", "Header")
_VALUE_FIELDS = ("value", "Value")
# `scheme://user:password@`, and `?name=value` / `&name=value` in a URL's query.
# The password runs to the last `@` before the host (a password may hold `@`); a fragment's
# parameters (`#access_token=...`, OAuth's implicit flow) are read as a query's.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/@:]*:)([^\s/]+)(@)")
_QUERY_PARAM = re.compile(r"([?&;#])([^=&#\s]+)=([^&#\s]*)")
_BEARER = re.compile(r"(\bbearer\s+)([A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)


def redact(
    value: JsonValue, pattern: re.Pattern[str] | None, keys: Collection[str] = (), *, secrets: Iterable[str] = ()
) -> JsonValue:
    """`value` with every secret in it replaced by `"[REDACTED]"`, at any depth.

    Args:
        value: A JSON value (pydantic `SecretStr`/`SecretBytes` objects in it are secrets too).
        pattern: Keys matching it are secret (`DEFAULT_SECRET_PATTERN`); None judges no key by name.
        keys: Exact key names that are always secret.
        secrets: Strings known to be secret elsewhere, redacted wherever they appear in `value`.

    Returns:
        The redacted value; the very same object when nothing in it is secret.

    Example:
        ```python
        from threadloom.context import DEFAULT_SECRET_PATTERN, redact

        data = {
            "user": "ada",
            "auth": {"api_key": "sk-1"},
            "headers": [["Authorization", "Bearer abcdef123456"]],
            "dsn": "postgresql://ada:hunter22@db/app",
            "note": "the key hunter22 works",
        }
        assert redact(data, DEFAULT_SECRET_PATTERN) == {
            "user": "ada",
            "auth": "[REDACTED]",
            "headers": [["Authorization", "[REDACTED]"]],
            "dsn": "postgresql://ada:[REDACTED]@db/app",
            "note": "the key [REDACTED] works",
        }
        ```
    """
    return redact_with(Redactor(pattern, keys), value, secrets=secrets)


def redact_with(redactor: Redactor, value: JsonValue, *, secrets: Iterable[str] = ()) -> JsonValue:
    """`redact` by a redactor built once (for its pattern and keys), so that views of many values judge each key once.

    Args:
        redactor: The redactor of the pattern and keys.
        value: A JSON value.
        secrets: Strings known to be secret elsewhere, redacted wherever they appear in `value`.

    Returns:
        What `redact(value, pattern, keys, secrets=secrets)` returns.
    """
    found = {s for s in secrets if len(s) >= MIN_KNOWN_SECRET}
    out = redactor.redact(value, found)
    return scrub(out, found) if found else out


class Redactor:
    """Redacts values for one pattern and set of keys, remembering its verdict on each key it met.

    Most events repeat the same few keys, so a verdict is a dict lookup after the first time, and a
    key found not secret a set lookup.
    """

    __slots__ = ("_is_secret", "_keys", "_plain", "_verdicts")

    def __init__(self, pattern: re.Pattern[str] | None, keys: Collection[str] = ()) -> None:
        self._is_secret = None if pattern is None else _secret_test(pattern)
        self._keys = frozenset(keys)
        self._verdicts: dict[str, bool] = {}
        # The keys of `_verdicts` that are not secret and need no second look (a `value` field does:
        # its entry may name a secret, `{"name": "API_KEY", "value": ...}`).
        self._plain: set[str] = set()

    def secret_key(self, key: str) -> bool:
        """Whether the value under `key` is secret."""
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = key in self._keys or (self._is_secret is not None and self._is_secret(key))
            if len(self._verdicts) >= _VERDICT_LIMIT:
                self._verdicts.clear()  # keys can be data (ids, names): keep the memory bounded
                self._plain.clear()
            self._verdicts[key] = verdict
            if not verdict and key not in _VALUE_FIELDS:
                self._plain.add(key)
        return verdict

    def redact(self, value: JsonValue, found: set[str]) -> JsonValue:
        """`value` redacted (the same object if nothing is secret); each secret string found goes into `found`."""
        if isinstance(value, dict):
            return self.redact_mapping(value, found)
        if isinstance(value, list):
            return self._sequence(value, found)
        if isinstance(value, str):
            return _text(value, self, found) if _may_hide(value) else value
        if isinstance(value, _SECRET_TYPES):
            return REDACTED
        return value

    def redact_mapping(self, value: dict[str, JsonValue], found: set[str]) -> JsonValue:
        """`redact` of a mapping."""
        # Most mappings hide nothing: look first, without building anything, and rebuild only when
        # something in it is secret.
        plain = self._plain
        named = False  # a `value` field is in it
        for key, item in value.items():
            if key not in plain:
                if self.secret_key(key):
                    return self._rebuilt(value, found)
                named = named or key in _VALUE_FIELDS
            kind = type(item)
            if kind is str:
                if "://" in item or "earer" in item or "EARER" in item:  # type: ignore[operator] - `kind is str`
                    return self._rebuilt(value, found)
            elif kind in _SCALARS:
                continue
            elif kind is dict:
                if self.redact_mapping(item, found) is not item:  # type: ignore[arg-type] - `kind is dict`
                    return self._rebuilt(value, found)
            elif self.redact(item, found) is not item:
                return self._rebuilt(value, found)
        if named and _named_secret(value, self) is not None:
            return self._rebuilt(value, found)
        return value

    def _rebuilt(self, value: dict[str, JsonValue], found: set[str]) -> JsonValue:
        named = _named_secret(value, self) if ("value" in value or "Value" in value) else None
        out: dict[str, JsonValue] | None = None
        for i, (key, item) in enumerate(value.items()):
            if key == named or self.secret_key(key):
                new: JsonValue = REDACTED
                if item != REDACTED:
                    _remember(item, found)
            else:
                new = self.redact(item, found)
            if out is None and new is not item:
                out = dict(itertools.islice(value.items(), i))
            if out is not None:
                out[key] = new
        return value if out is None else out

    def _sequence(self, value: list[JsonValue], found: set[str]) -> JsonValue:
        if len(value) == 2 and isinstance(name := value[0], str) and isinstance(value[1], str | int | float):
            if self.secret_key(name) and value[1] != REDACTED:  # a header pair: ["Authorization", "Bearer ..."]
                _remember(value[1], found)
                return [name, REDACTED]
        items = [self.redact(v, found) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items


_CONTAINERS = (dict, list)
_SCALARS = frozenset({int, float, bool, type(None)})  # JSON values that never hide a secret
_VERDICT_LIMIT = 4096


def _may_hide(text: str) -> bool:
    """Whether a string may hold a secret of its own (a URL's password, a bearer token): substring tests."""
    return "://" in text or "earer" in text or "EARER" in text


def _named_secret(value: dict[str, JsonValue], redactor: Redactor) -> str | None:
    """The value field of a name/value entry naming a secret (`{"name": "API_KEY", "value": ...}`), else None."""
    for field in _NAME_FIELDS:
        name = value.get(field)
        if isinstance(name, str) and redactor.secret_key(name):
            return next(f for f in _VALUE_FIELDS if f in value)
    return None


def _text(text: str, redactor: Redactor, found: set[str]) -> str:
    """`text` with a URL's password, a URL's secret query values and bearer tokens replaced."""

    def password(match: re.Match[str]) -> str:
        _remember(match.group(2), found)
        return match.group(1) + REDACTED + match.group(3)

    def parameter(match: re.Match[str]) -> str:
        if not match.group(3) or not redactor.secret_key(match.group(2)):
            return match.group()
        _remember(match.group(3), found)
        return f"{match.group(1)}{match.group(2)}={REDACTED}"

    out = text
    if "://" in out:
        out = _URL_PASSWORD.sub(password, out)
        if "=" in out:
            out = _QUERY_PARAM.sub(parameter, out)
    if "earer" in out or "EARER" in out:
        out = _BEARER.sub(_keep_prefix(found), out)
    return text if out == text else out


def _keep_prefix(found: set[str]) -> Callable[[re.Match[str]], str]:
    """A replacement for a match whose group 1 stays and group 2 is the secret."""

    def replace(match: re.Match[str]) -> str:
        _remember(match.group(2), found)
        return match.group(1) + REDACTED

    return replace


def _remember(value: object, found: set[str]) -> None:
    """Put every string of a secret value that is long enough to recognise elsewhere into `found`."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= MIN_KNOWN_SECRET and text != REDACTED:
            found.add(text)
            scheme, _, token = text.partition(" ")  # `Bearer abc...`, `Basic abc...`: the token alone too
            if scheme and len(token) >= MIN_KNOWN_SECRET and " " not in token:
                found.add(token)
    elif isinstance(value, dict):
        for item in cast(dict[str, object], value).values():
            _remember(item, found)
    elif isinstance(value, list):
        for item in cast(list[object], value):
            _remember(item, found)


def scrub(value: JsonValue, secrets: Collection[str]) -> JsonValue:
    """`value` with each of `secrets` replaced by `[REDACTED]` inside every string (the same object if none is)."""
    if not secrets:
        return value
    return _scrub(value, _secrets_pattern(frozenset(secrets)))


def _scrub(value: JsonValue, pattern: re.Pattern[str]) -> JsonValue:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value) if pattern.search(value) else value
    if isinstance(value, dict):
        out: dict[str, JsonValue] | None = None
        for i, (key, item) in enumerate(value.items()):
            new = _scrub(item, pattern) if isinstance(item, str | dict | list) else item
            if out is None and new is not item:
                out = dict(itertools.islice(value.items(), i))
            if out is not None:
                out[key] = new
        return value if out is None else out
    if isinstance(value, list):
        items = [_scrub(v, pattern) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


@functools.lru_cache(maxsize=64)
def _secrets_pattern(secrets: frozenset[str]) -> re.Pattern[str]:
    """One regular expression for all `secrets`, the longest first (so a secret inside another goes whole)."""
    return re.compile("|".join(re.escape(s) for s in sorted(secrets, key=lambda s: (-len(s), s))))


@functools.lru_cache(maxsize=64)
def _secret_test(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    """Whether `pattern` marks a key secret: one test per pattern, so that each pattern judges keys on its own."""

    def is_secret(key: str) -> bool:
        return pattern.search(key) is not None

    return is_secret
