from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import JsonValue

from threadloom import Event, UserError
from threadloom.events import storable_text


def test_event_defaults_and_validation() -> None:
    event = Event("slack_message", {"text": "hi"})
    assert event.id.startswith("ev_") and event.at.tzinfo is UTC
    with pytest.raises(UserError, match="snake_case"):
        Event("Slack Message", {})
    with pytest.raises(UserError, match="timezone-aware"):
        Event("x", None, at=datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test
    with pytest.raises(UserError, match=r"data\.when holds a datetime"):
        Event("x", {"when": datetime.now(UTC)})  # pyright: ignore[reportArgumentType]
    with pytest.raises(UserError, match="nan"):
        Event("x", [float("nan")])
    with pytest.raises(UserError, match="non-string key"):
        Event("x", {1: "a"})  # pyright: ignore[reportArgumentType]


def test_event_time_is_normalised_to_utc() -> None:
    local = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert Event("x", at=local).at == datetime(2026, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "data",
    [
        "ok" + chr(0xD800),
        {"text": ["fine", "bad" + chr(0xDC00)]},
        {"key" + chr(0xD800): 1},
        10**5000,
        {"n": -(10**4400)},
    ],
    ids=["surrogate", "nested", "key", "big-int", "big-negative"],
)
def test_an_event_refuses_what_no_store_can_hold(data: JsonValue) -> None:
    # Before: these passed Event() and made every store's json.dumps raise, so a worker retried forever.
    with pytest.raises(UserError, match="lone surrogate|too large"):
        Event("tool_response", data)


def test_storable_text_replaces_only_lone_surrogates() -> None:
    assert storable_text("ok" + chr(0xD800) + "é😀") == "ok\ufffdé😀"
    assert Event("error", {"output": storable_text("x" + chr(0xDFFF))}).data == {"output": "x\ufffd"}


@pytest.mark.parametrize(
    ("event_id", "message"),
    [
        ("", "non-empty"),
        ("ev_" + "x" * 200, "203 characters; at most 200"),
        ("ev\x00nul", "NUL character"),
        ("ev_" + chr(0xD800), "lone surrogate"),
        (17, "non-empty string"),
    ],
    ids=["empty", "long", "nul", "surrogate", "int"],
)
def test_an_event_id_is_text_a_store_can_keep(event_id: object, message: str) -> None:
    # Before: a NUL or a lone surrogate passed and the store's insert failed (PostgreSQL refuses NUL in text).
    with pytest.raises(UserError, match=message):
        Event("note", id=event_id)  # pyright: ignore[reportArgumentType]
    assert Event("note", id="ev_" + "x" * 197).id == "ev_" + "x" * 197
    assert Event("note", id="évènement:42/ü\n").id == "évènement:42/ü\n"


@pytest.mark.parametrize("event_type", ["slack_message\n", "note\x00", "a" * 201, "ünicode"])
def test_an_event_type_is_short_snake_case_and_nothing_after_it(event_type: str) -> None:
    # Before: `re.match("^...$")` let a trailing newline through ("slack_message\n").
    with pytest.raises(UserError, match="snake_case|at most 200"):
        Event(event_type)
