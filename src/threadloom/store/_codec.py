"""The one place the durable log is serialised: an event <-> a row, with a schema version."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Final, cast

from pydantic import JsonValue

from ..events import Event, restored_event, restored_events
from ..exceptions import ThreadDecodeError, UserError
from ..thread import Thread

__all__ = [
    "SCHEMA_VERSION",
    "EventRow",
    "decode_event",
    "decode_events",
    "decode_metadata",
    "decode_thread",
    "encode_event",
    "encode_metadata",
    "format_time",
    "parse_time",
]

SCHEMA_VERSION: Final = 1
"""Version of the event row format; a row of another version is refused rather than misread."""

EventRow = tuple[str, str, str, str, int]
"""(event id, type, data as JSON, `at` as ISO 8601, schema version)."""


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode  # made once, not per call


def encode_event(event: Event) -> EventRow:
    """The row an event is stored as. JSON floats and big ints round-trip exactly in Python."""
    return (event.id, event.type, _ENCODE(event.data), event.at.isoformat(), SCHEMA_VERSION)


def decode_event(event_id: str, type_: str, data: str, at: str | datetime, version: int) -> Event:
    """The event a row stores.

    Raises:
        ValueError: The row's schema version is not one this code reads.
    """
    if version != SCHEMA_VERSION:
        raise ValueError(f"event {event_id!r} has schema version {version}; this threadloom reads {SCHEMA_VERSION}")
    moment = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    if moment.utcoffset() is None:
        raise ValueError(f"event {event_id!r} has a time without a timezone: {at!r}")
    # The row was a valid event when written; only what json.loads could add (NaN, Infinity) is refused.
    value = cast(JsonValue, _loads(data))
    return restored_event(type_, value, event_id, moment)


def decode_thread(
    thread_id: str, metadata: str, rows: Sequence[tuple[str, str, str, str | datetime, int | None]]
) -> Thread:
    """The thread a store's rows hold: its metadata (`encode_metadata`'s text) and its event rows, oldest first.

    Raises:
        ThreadDecodeError: A row cannot be read (bad JSON, time or schema version, a duplicate
            event id) or the metadata is not a JSON object; the error names the thread and the event.
    """
    try:
        meta = decode_metadata(metadata)
    except (ValueError, RecursionError) as exc:
        raise ThreadDecodeError(
            f"thread {thread_id!r} cannot be read: its metadata is not a JSON object: {exc}", thread_id=thread_id
        ) from exc
    events = decode_events(rows, thread_id=thread_id)
    try:
        return Thread(events, thread_id=thread_id, metadata=meta)
    except (UserError, ValueError, TypeError) as exc:
        seen: set[str] = set()
        duplicate = next((e.id for e in events if e.id in seen or seen.add(e.id)), None)
        raise ThreadDecodeError(
            f"thread {thread_id!r} cannot be read at event {duplicate!r}: {exc}",
            thread_id=thread_id,
            event_id=duplicate,
        ) from exc


def decode_events(
    rows: Sequence[tuple[str, str, str, str | datetime, int | None]], *, thread_id: str = ""
) -> list[Event]:
    """The events rows store, oldest first: `decode_event` for each row, done for all rows at once.

    A row is `(event id, type, data, at, schema version)`; a version of None stands for
    `SCHEMA_VERSION` (a query may select `NULLIF(schema_version, SCHEMA_VERSION)`: a NULL costs the
    driver less than an int). Rather than a JSON parse, a time parse and an `Event` per row, this
    checks the versions in one set operation, parses every row's data in one `json` call (the rows
    joined into one JSON array: each row is one JSON value, as `encode_event` wrote it) and fills
    the events column by column. Any row this refuses, or a batch that does not come apart into
    exactly one value per row, is decoded again row by row, which raises for the first bad row
    exactly as `decode_event` does. (Only rows written by hand as fragments that pair up into as
    many values as there are rows, such as `[1`, `2]`, `3,4`, would pass unnoticed: the store
    trusts its rows to be what `encode_event` wrote, as it trusts their values.)

    Raises:
        ThreadDecodeError: A row's schema version is not one this code reads, its time has no
            timezone or its data is not JSON (naming `thread_id` and the row's event).
    """
    if not rows:
        return []
    ids, types, datas, ats, versions = zip(*rows, strict=True)
    try:
        if not _CURRENT_VERSIONS.issuperset(versions):
            raise ValueError("another schema version")
        moments = list(map(datetime.fromisoformat, cast(tuple[str, ...], ats)))
        if not _UTC_ONLY.issuperset(map(_TZINFO, moments)):  # stored times are UTC: this is rare
            offsets = list(map(datetime.utcoffset, moments))
            if None in offsets:
                raise ValueError("a time without a timezone")
            moments = [m.astimezone(UTC) if o else m for m, o in zip(moments, offsets, strict=True)]
        values = cast(list[JsonValue], _DECODER.decode(f"[{','.join(datas)}]"))
        if len(values) != len(rows):
            raise ValueError("a row is not one JSON value")
    except (ValueError, TypeError, RecursionError):  # TypeError: a driver gave `at` as a datetime
        return [_decode_row(thread_id, row) for row in rows]
    return restored_events(types, values, ids, moments)


def _decode_row(thread_id: str, row: tuple[str, str, str, str | datetime, int | None]) -> Event:
    event_id, type_, data, at, version = row
    try:
        return decode_event(event_id, type_, data, at, SCHEMA_VERSION if version is None else version)
    except (ValueError, TypeError, RecursionError) as exc:  # RecursionError: JSON nested too deep to read
        raise ThreadDecodeError(
            f"thread {thread_id!r} cannot be read at event {event_id!r}: {exc}", thread_id=thread_id, event_id=event_id
        ) from exc


_CURRENT_VERSIONS: Final = frozenset({SCHEMA_VERSION, None})
_UTC_ONLY: Final = frozenset({UTC})
_TZINFO: Final = attrgetter("tzinfo")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _loads(text: str) -> object:
    """`_DECODER.decode(text)`, skipping its two whitespace scans for a row with none around the value.

    `encode_event` writes no surrounding whitespace, and `decode` costs about twice `raw_decode` on
    the small documents events are; any other text (surrounding whitespace, trailing data, an error)
    goes through `decode`, which accepts or refuses it exactly as before.
    """
    try:
        value, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError:
        return _DECODER.decode(text)
    return value if end == len(text) else _DECODER.decode(text)


def encode_metadata(thread: Thread) -> str:
    """A thread's metadata as JSON."""
    return json.dumps(dict(thread.metadata), ensure_ascii=False, separators=(",", ":"))


def decode_metadata(text: str) -> dict[str, JsonValue]:
    """Metadata stored by `encode_metadata`.

    Raises:
        ValueError: The text is not a JSON object.
    """
    value = _DECODER.decode(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return cast(dict[str, JsonValue], value)


def format_time(moment: datetime) -> str:
    """A UTC time as fixed-width text, so that text order is time order (SQLite has no time type)."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.%fZ")  # strftime's %Y does not pad years < 1000


def parse_time(text: str) -> datetime:
    """A time written by `format_time`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
