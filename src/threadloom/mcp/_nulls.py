"""Explicit nulls in an MCP tool call: a property the call left out is not sent, a null it gave is.

An optional property without a default is `T | None = None` in the model, and None is left out
of the dump, so the server applies its own default. Where the property's schema allows null, a
null the model wrote on purpose (to clear a value, say) is kept: the models built from the schema
dump it again when the field was given (`keep_given_nulls`).
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, SerializationInfo

__all__ = ["keep_given_nulls", "left_out", "left_out_unless_given"]


def left_out(value: object) -> bool:
    """`exclude_if` of an optional property that does not allow null: None means "not given"."""
    return value is None


def left_out_unless_given(value: object) -> bool:
    """`exclude_if` of an optional property that allows null; `keep_given_nulls` puts back a given null."""
    return value is None


def keep_given_nulls(model: BaseModel, data: object, info: SerializationInfo) -> object:
    """`data`, the model's dump, with the nulls it was given for properties that allow null."""
    if not isinstance(data, dict) or info.exclude_none:
        return cast(object, data)
    dumped = cast(dict[str, Any], data)
    fields = type(model).model_fields
    for name in model.model_fields_set:
        field = fields.get(name)
        if field is None or field.exclude_if is not left_out_unless_given or getattr(model, name) is not None:
            continue
        if (info.exclude is not None and name in info.exclude) or (
            info.include is not None and name not in info.include
        ):
            continue
        dumped[field.alias if field.alias and info.by_alias is not False else name] = None
    return dumped
