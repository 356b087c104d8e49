"""A thread as one JSON document: what `Thread.to_json` writes and `Thread.from_json` reads (not public API)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, JsonValue, TypeAdapter, ValidationError

from .events import Event
from .exceptions import ThreadDecodeError, UserError

__all__ = ["dump_thread", "load_thread"]


class _EventModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    type: str
    data: JsonValue
    at: datetime


class _ThreadModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    metadata: dict[str, JsonValue]
    events: list[_EventModel]


_THREAD_JSON: TypeAdapter[_ThreadModel] = TypeAdapter(_ThreadModel)


def dump_thread(
    thread_id: str, metadata: Mapping[str, JsonValue], events: Iterable[Event], *, indent: int | None = None
) -> str:
    """The JSON document of a thread with this id, metadata and events."""
    model = _ThreadModel(
        id=thread_id,
        metadata=dict(metadata),
        events=[_EventModel(id=e.id, type=e.type, data=e.data, at=e.at) for e in events],
    )
    return _THREAD_JSON.dump_json(model, indent=indent).decode()


def load_thread(text: str | bytes) -> tuple[str, dict[str, JsonValue], list[Event]]:
    """The id, metadata and events of a thread's JSON document.

    Raises:
        ThreadDecodeError: The text is not JSON, not a thread's shape, or holds an invalid event.
    """
    try:
        model = _THREAD_JSON.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the document"
        raise ThreadDecodeError(f"not a threadloom thread: {where}: {first['msg']}") from exc
    try:
        events = [Event(e.type, e.data, id=e.id, at=e.at) for e in model.events]
    except UserError as exc:
        raise ThreadDecodeError(f"not a threadloom thread: {exc}") from exc
    return model.id, model.metadata, events
