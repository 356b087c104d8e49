"""Raw model text to a typed value, tolerantly (factor 4): the parser meets the model halfway.

The package holds one pipeline and the pieces it alone uses:

- `_parse`: `parse` / `parse_json_schema`, the steps from text to a validated value.
- `_coerce` (with `_mentions` and `_constraints`): bend a JSON value toward the target's schema.
- `_quotes`: backtick and triple-quoted values rewritten as JSON strings before repair.
"""

from ._parse import MAX_TEXT_LENGTH, parse, parse_json_schema

__all__ = ["MAX_TEXT_LENGTH", "parse", "parse_json_schema"]
