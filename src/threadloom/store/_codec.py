"""The one place the durable log is serialised: an event <-> a row, with a schema version."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Final, cast

from pydantic import JsonValue

from ..events import Event, Thread, restored_event

__all__ = [
    "SCHEMA_VERSION",
    "EventRow",
    "decode_event",
    "decode_metadata",
    "encode_event",
    "encode_metadata",
    "format_time",
    "parse_time",
]

SCHEMA_VERSION: Final = 1
"""Version of the event row format; a row of another version is refused rather than misread."""

EventRow = tuple[str, str, str, str, int]
"""(event id, type, data as JSON, `at` as ISO 8601, schema version)."""


def encode_event(event: Event) -> EventRow:
    """The row an event is stored as. JSON floats and big ints round-trip exactly in Python."""
    data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (event.id, event.type, data, event.at.isoformat(), SCHEMA_VERSION)


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
    """Metadata stored by `encode_metadata`."""
    return cast(dict[str, JsonValue], json.loads(text))


def format_time(moment: datetime) -> str:
    """A UTC time as fixed-width text, so that text order is time order (SQLite has no time type)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """A time written by `format_time`."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
