"""Rows <-> events: the batch decoder a store's load uses reads exactly what `decode_event` reads."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import JsonValue

from threadloom import Event, ThreadDecodeError
from threadloom.store._codec import SCHEMA_VERSION, EventRow, decode_event, decode_events, decode_thread, encode_event

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=10,
)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), timezone(timedelta(0), "Z")]
)
times = st.datetimes(
    min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    timezones=zones,
)
events = st.builds(
    Event,
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
    json_values,
    id=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=200),
    at=times,
)


def one_by_one(rows: list[tuple[str, str, str, str | datetime, int | None]]) -> list[Event]:
    return [decode_event(i, t, d, a, SCHEMA_VERSION if v is None else v) for i, t, d, a, v in rows]


@given(st.lists(events, max_size=12), st.booleans())
def test_the_batch_decodes_what_each_row_decodes(written: list[Event], nulls: bool) -> None:
    rows: list[tuple[str, str, str, str | datetime, int | None]] = [
        (*encode_event(e)[:4], None if nulls else SCHEMA_VERSION) for e in written
    ]
    loaded = decode_events(rows)
    assert loaded == one_by_one(rows) == written
    assert all(e.at.utcoffset() == timedelta(0) for e in loaded)
    assert [e.data for e in loaded] == [e.data for e in written]


@given(st.lists(events, min_size=1, max_size=5))
def test_times_a_driver_gives_as_datetimes_are_read_too(written: list[Event]) -> None:
    rows: list[tuple[str, str, str, str | datetime, int | None]] = [
        (e.id, e.type, encode_event(e)[2], e.at.astimezone(timezone(timedelta(hours=2))), SCHEMA_VERSION)
        for e in written
    ]
    loaded = decode_events(rows)
    assert loaded == written and all(e.at.tzinfo == UTC for e in loaded)


def good(n: int) -> EventRow:
    return encode_event(Event("note", {"n": n, "list": [n]}, id=f"ev_{n}"))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (("ev_bad", "note", "{}", "2026-01-01T00:00:00+00:00", 2), "schema version 2"),
        (("ev_bad", "note", "{}", "2026-01-01T00:00:00", SCHEMA_VERSION), "time without a timezone"),
        (("ev_bad", "note", "{}", "yesterday", SCHEMA_VERSION), "Invalid isoformat"),
        (("ev_bad", "note", "1,2", "2026-01-01T00:00:00+00:00", SCHEMA_VERSION), "Extra data"),
        (("ev_bad", "note", "NaN", "2026-01-01T00:00:00+00:00", SCHEMA_VERSION), "NaN is not a JSON value"),
        (("ev_bad", "note", "", "2026-01-01T00:00:00+00:00", SCHEMA_VERSION), "Expecting value"),
        (("ev_bad", "note", "[1", "2026-01-01T00:00:00+00:00", SCHEMA_VERSION), "Expecting"),
    ],
)
@pytest.mark.parametrize("where", [0, 1, 3])
def test_a_bad_row_is_refused_as_decoding_it_alone_refuses_it(bad: EventRow, message: str, where: int) -> None:
    rows: list[tuple[str, str, str, str | datetime, int | None]] = [good(n) for n in range(3)]
    rows.insert(where, bad)
    with pytest.raises(ThreadDecodeError, match=message) as batch:
        decode_events(rows, thread_id="th_1")
    with pytest.raises(ValueError) as alone:
        one_by_one(rows)
    assert str(batch.value) == f"thread 'th_1' cannot be read at event 'ev_bad': {alone.value}"
    assert (batch.value.thread_id, batch.value.event_id) == ("th_1", "ev_bad")


@pytest.mark.parametrize("where", [0, 2])
def test_a_row_nested_too_deep_to_read_is_refused_naming_it(where: int) -> None:
    rows: list[tuple[str, str, str, str | datetime, int | None]] = [good(n) for n in range(2)]
    rows.insert(where, ("ev_deep", "note", "[" * 100_000 + "]" * 100_000, "2026-01-01T00:00:00+00:00", SCHEMA_VERSION))
    with pytest.raises(ThreadDecodeError, match="recursion") as refused:
        decode_events(rows, thread_id="th_1")
    assert (refused.value.thread_id, refused.value.event_id) == ("th_1", "ev_deep")
    with pytest.raises(ThreadDecodeError, match="metadata"):
        decode_thread("th_1", "[" * 100_000 + "]" * 100_000, rows[:1])


def test_rows_that_only_parse_together_are_refused() -> None:
    # Two halves of one array in two rows: joined they would parse, alone neither does.
    first, second = good(1), good(2)
    rows: list[tuple[str, str, str, str | datetime, int | None]] = [
        (*first[:2], "[1", *first[3:]),
        (*second[:2], "2]", *second[3:]),
    ]
    with pytest.raises(ValueError, match="Expecting"):
        decode_events(rows)


def test_no_rows_no_events() -> None:
    assert decode_events([]) == []


def test_data_reads_back_as_the_same_json() -> None:
    data: JsonValue = {"f": 0.1, "big": 2**80, "s": "é\n\u2028", "nested": [{"a": None}, True, -0.0]}
    [event] = decode_events([encode_event(Event("note", data))])
    assert event.data == data and repr(event.data) == repr(data)


def test_decoding_a_thread_names_the_thread_and_the_event() -> None:
    rows: list[tuple[str, str, str, str | datetime, int | None]] = [good(n) for n in range(3)]
    thread = decode_thread("th_1", '{"agent": "a"}', rows)
    assert thread.id == "th_1" and dict(thread.metadata) == {"agent": "a"} and len(thread) == 3
    with pytest.raises(ThreadDecodeError, match="schema version 7") as bad:
        decode_thread("th_1", "{}", [*rows, ("ev_x", "note", "{}", "2026-01-01T00:00:00+00:00", 7)])
    assert (bad.value.thread_id, bad.value.event_id) == ("th_1", "ev_x")
    with pytest.raises(ThreadDecodeError, match="metadata") as meta:
        decode_thread("th_1", "[1", rows)
    assert (meta.value.thread_id, meta.value.event_id) == ("th_1", None)
    with pytest.raises(ThreadDecodeError) as twice:
        decode_thread("th_1", "{}", [*rows, rows[1]])
    assert (twice.value.thread_id, twice.value.event_id) == ("th_1", "ev_1")
