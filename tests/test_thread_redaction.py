"""A thread's redaction: what every view outside the model's context hides, and how it grows with the thread."""

from __future__ import annotations

import pytest
from pydantic import JsonValue

from threadloom import Event, Thread, UserError
from threadloom._thread_redaction import ThreadRedaction
from threadloom.context import DEFAULT_SECRET_PATTERN

TOKEN = "tok-abcdef-123"


def _thread() -> Thread:
    record: dict[str, JsonValue] = {"name": "scripted", "input_tokens": 3}
    call: dict[str, JsonValue] = {"intent": "log_in", "arguments": {"user": "ada", "api_token": TOKEN}, "model": record}
    return Thread.start("user_input", f"use {TOKEN}", password="hunter22", team="ops").append(Event("tool_call", call))


def test_a_secret_is_hidden_under_its_key_and_wherever_else_it_is_quoted() -> None:
    thread = _thread()
    shown = ThreadRedaction.found_in(thread.events, DEFAULT_SECRET_PATTERN).thread(thread)
    assert shown.events[0].data == "use [REDACTED]"
    assert shown.events[1].data == {
        "intent": "log_in",
        "arguments": {"user": "ada", "api_token": "[REDACTED]"},
        "model": {
            "name": "scripted",
            "input_tokens": 3,
        },  # threadloom's own record: counts, kept though `*_tokens` looks secret
    }
    assert shown.metadata == {"password": "[REDACTED]", "team": "ops"}
    assert [e.id for e in shown.events] == [e.id for e in thread.events]


def test_seeing_new_events_adds_their_secrets_and_nothing_new_keeps_the_same_redaction() -> None:
    thread = _thread()
    early = ThreadRedaction.found_in(thread.events[:1], DEFAULT_SECRET_PATTERN)
    assert early.apply("use " + TOKEN) == "use " + TOKEN  # not known yet
    later = early.seeing(thread.events[1:])
    assert later.apply("use " + TOKEN) == "use [REDACTED]"
    assert later.seeing(thread.events[:1]) is later


def test_hides_says_whether_a_value_would_show_redacted() -> None:
    redaction = ThreadRedaction.found_in(_thread().events, DEFAULT_SECRET_PATTERN)
    assert redaction.hides("password", "x") and redaction.hides("note", f"it is {TOKEN}")
    assert not redaction.hides("note", "plain")
    assert not ThreadRedaction(None, frozenset()).hides("password", "x")  # redaction turned off


def test_kept_drops_an_edit_that_sends_a_hidden_argument_back_as_shown() -> None:
    redaction = ThreadRedaction.found_in(_thread().events, DEFAULT_SECRET_PATTERN)
    dsn = "postgresql://ada:the-password@db/app"
    arguments: dict[str, JsonValue] = {"user": "ada", "api_token": TOKEN, "dsn": dsn}
    as_read = redaction.apply(arguments)
    assert as_read == {"user": "ada", "api_token": "[REDACTED]", "dsn": "postgresql://ada:[REDACTED]@db/app"}
    assert isinstance(as_read, dict)
    assert redaction.kept(arguments, {**as_read, "user": "grace"}) == {"user": "grace"}
    assert redaction.kept(arguments, {"dsn": "[REDACTED]"}) == {}  # as a form shows a secret field
    new = {"api_token": "tok-new-one-456", "dsn": "postgresql://ada:[REDACTED]@db/other", "user": "[REDACTED]"}
    assert redaction.kept(arguments, new) == new  # a new value replaces; `user` is not hidden, so taken as sent


def test_kept_restores_a_hidden_value_sent_back_inside_an_edited_object_or_list() -> None:
    redaction = ThreadRedaction.found_in(_thread().events, DEFAULT_SECRET_PATTERN)
    config: dict[str, JsonValue] = {"api_key": TOKEN, "region": "us", "hosts": [["Authorization", f"Bearer {TOKEN}"]]}
    arguments: dict[str, JsonValue] = {"config": config, "user": "ada"}
    as_read = redaction.apply(arguments)
    assert isinstance(as_read, dict) and isinstance(shown := as_read["config"], dict)
    assert shown["api_key"] == "[REDACTED]"
    # One field of the object edited, the secret beside it sent back as read: the secret keeps its value.
    edited = redaction.kept(arguments, {"config": {**shown, "region": "eu"}})
    assert edited == {"config": {**config, "region": "eu"}}
    assert redaction.kept(arguments, {"config": shown}) == {}  # all of it as read: no edit
    fresh: dict[str, JsonValue] = {"config": {"api_key": "sk-new-key-789", "region": "eu"}}
    assert redaction.kept(arguments, fresh) == fresh  # a new value, and a field left out, as sent


def test_kept_refuses_a_changed_list_that_sends_a_hidden_value_back_masked() -> None:
    redaction = ThreadRedaction.found_in(_thread().events, DEFAULT_SECRET_PATTERN)
    accounts: list[JsonValue] = [
        {"host": "a.com", "api_key": "key-of-a-123"},
        {"host": "b.com", "api_key": "key-of-b-456"},
    ]
    arguments: dict[str, JsonValue] = {"accounts": accounts}
    as_read = redaction.apply(arguments)
    assert isinstance(as_read, dict) and isinstance(shown := as_read["accounts"], list)
    assert redaction.kept(arguments, {"accounts": shown}) == {}  # as read: the stored list
    # Reordered, shortened or grown, a masked key would go with another host, or reach the tool as the mask.
    extra: JsonValue = {"host": "c.com", "api_key": "key-of-c-789"}
    changes: list[list[JsonValue]] = [shown[::-1], shown[1:], [*shown, extra]]
    for changed in changes:
        with pytest.raises(UserError, match="'accounts' is a list that holds a hidden value"):
            redaction.kept(arguments, {"accounts": changed})
    whole: list[JsonValue] = [{"host": "b.com", "api_key": "key-of-b-456"}]
    assert redaction.kept(arguments, {"accounts": whole}) == {"accounts": whole}  # every value given


def test_one_redactor_serves_a_redaction_and_those_it_grows_into() -> None:
    thread = _thread()
    early = ThreadRedaction.found_in(thread.events[:1], DEFAULT_SECRET_PATTERN)
    later = early.seeing(thread.events[1:])
    assert later != early and later.secrets > early.secrets
    # Built once: it keeps its verdicts on the keys it met, event batch after batch.
    assert later._redactor is early._redactor  # pyright: ignore[reportPrivateUsage]
    again = ThreadRedaction.found_in(thread.events, DEFAULT_SECRET_PATTERN)
    assert again == later and repr(again) == repr(later)  # not part of what a redaction is


class _CountingPattern:
    """A secret-key pattern that notes each key it is asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def search(self, key: str) -> object:
        self.asked.append(key)
        return DEFAULT_SECRET_PATTERN.search(key)


def test_each_key_is_judged_once_however_many_events_a_redaction_shows() -> None:
    pattern = _CountingPattern()
    redaction = ThreadRedaction(pattern, frozenset()).seeing([Event("note", {"user": "ada", "api_key": "sk-1"})])
    for n in range(3):
        assert redaction.apply({"user": "ada", "api_key": f"sk-{n}"}) == {"user": "ada", "api_key": "[REDACTED]"}
    assert sorted(pattern.asked) == ["api_key", "user"]
