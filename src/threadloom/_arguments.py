"""An intent's arguments as the log records them: JSON, with each secret's value (the tool runs on them)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from pydantic import JsonValue, SecretBytes, SecretStr

from .intents import Intent

__all__ = ["intent_arguments"]


def intent_arguments(intent: Intent) -> dict[str, JsonValue]:
    """The intent's fields as JSON, secrets as the model wrote them: the tool runs on the log's copy.

    pydantic's JSON dump writes a `SecretStr` as `**********`; the log keeps the value, and what
    reaches a model or a page is redacted when it renders (the field is a secret key of the agent).
    """
    dumped: dict[str, JsonValue] = intent.model_dump(mode="json", exclude={"intent"})
    if not _masked(dumped):  # no secret with a value in it (an empty one dumps as "", as it is)
        return dumped
    return cast(dict[str, JsonValue], _revealed(intent.model_dump(exclude={"intent"}), dumped))


_MASK = "**********"  # how pydantic's JSON dump writes a SecretStr or SecretBytes that is not empty


def _masked(dumped: JsonValue) -> bool:
    """Whether `dumped` holds pydantic's mask anywhere."""
    if isinstance(dumped, dict):
        return any(_masked(value) for value in dumped.values())
    if isinstance(dumped, list):
        return any(_masked(value) for value in dumped)
    return dumped == _MASK


def _revealed(python: object, dumped: JsonValue) -> JsonValue:
    """`dumped` with the value of each secret that `python` (the same dump in python mode) holds."""
    if isinstance(python, SecretStr):
        return python.get_secret_value()
    if isinstance(python, SecretBytes):
        return python.get_secret_value().decode("utf-8", "replace")
    if isinstance(python, dict) and isinstance(dumped, dict):
        items = cast(dict[object, object], python)
        return {key: _revealed(items.get(key), value) for key, value in dumped.items()}
    if isinstance(python, list | tuple) and isinstance(dumped, list):
        return [_revealed(a, b) for a, b in zip(cast(Iterable[object], python), dumped, strict=False)]
    return dumped
