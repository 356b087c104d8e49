"""Redaction with a redactor built once gives what a fresh `redact` gives, whatever it met before."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom._redact import Redactor, redact, redact_with
from threadloom.context import DEFAULT_SECRET_PATTERN

_SECRETS = ["hunter22", "sk-live-abcdef", "tok-123456", "short"]
_keys = st.sampled_from(["user", "note", "password", "api_key", "Authorization", "name", "value", "Key", "db_pin"])
_texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(_SECRETS),
    st.sampled_from(["API_KEY", "Authorization", "Bearer abcdef123456", "postgresql://ada:hunter22@db/app"]),
    st.sampled_from(["https://x.test/?token=tok-123456&page=2", "the key sk-live-abcdef works", "[REDACTED]"]),
)
_leaves: st.SearchStrategy[JsonValue] = st.one_of(st.none(), st.booleans(), st.integers(), _texts)
_values: st.SearchStrategy[JsonValue] = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys | st.text(max_size=6), inner, max_size=4),
    max_leaves=16,
)


@given(
    values=st.lists(_values, min_size=1, max_size=4),
    keys=st.frozensets(_keys, max_size=2),
    secrets=st.frozensets(st.sampled_from(_SECRETS), max_size=3),
    by_pattern=st.booleans(),
)
def test_a_reused_redactor_redacts_as_redact_does(
    values: list[JsonValue], keys: frozenset[str], secrets: frozenset[str], by_pattern: bool
) -> None:
    pattern = DEFAULT_SECRET_PATTERN if by_pattern else None
    redactor = Redactor(pattern, keys)  # one for all the values: its remembered verdicts must not change an answer
    for value in values:
        assert redact_with(redactor, value, secrets=secrets) == redact(value, pattern, keys, secrets=secrets)


def test_nothing_secret_gives_back_the_very_same_value() -> None:
    value: JsonValue = {"user": "ada", "notes": ["hello", {"n": 1}]}
    assert redact_with(Redactor(DEFAULT_SECRET_PATTERN), value, secrets={"hunter22"}) is value
