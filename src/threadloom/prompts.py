"""Prompts are plain functions you own (factor 2): inputs in, the exact messages out.

`default_prompt` is one such function; write your own with the same signature and pass it as
`Agent(prompt=...)` to change any token the model sees.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from .intents import Intent, intent_name
from .messages import Message
from .thread import Thread

__all__ = [
    "NEXT_STEP_QUESTION",
    "NEXT_TOOL_QUESTION",
    "Prompt",
    "PromptInput",
    "default_prompt",
    "describe_intents",
    "schema_to_text",
]

NEXT_STEP_QUESTION = "What is the next step? Answer with one JSON object."
"""The question that ends the default prompt (factor 3: "here's what happened, what's next?")."""
NEXT_TOOL_QUESTION = "What is the next step? Call exactly one tool."
"""The same question for a model asked through native tool calling (the `"tools"` strategy)."""


@dataclass(frozen=True, slots=True)
class PromptInput:
    """What a prompt function gets for one step."""

    instructions: str
    """The agent's instructions."""
    thread: Thread
    """The thread as the model will see it (after `before_model`), unredacted: render with care."""
    context: tuple[Message, ...]
    """The thread already rendered by the agent's `Context` (redacted, errors hidden, in budget)."""
    intents: tuple[type[Intent], ...]
    """The intents the model may choose from: the agent's tools, then the built-ins."""
    approvals: frozenset[str]
    """Names of the intents that need a person's approval before they run."""
    strategy: Literal["tools", "json_schema", "prompted"] = "prompted"
    """How the model is asked (`threadloom.models.Strategy`): with `"tools"` the intents also go out
    as tool definitions, so the prompt asks for a tool call and needs no JSON shapes."""


Prompt = Callable[[PromptInput], Sequence[Message]]
"""A prompt function: a `PromptInput` in, the exact messages for the model out."""


def default_prompt(prompt: PromptInput) -> list[Message]:
    """A system message (instructions + the intents) and the rendered thread, then the question.

    Args:
        prompt: The step's inputs.

    Returns:
        The messages, exactly as the model gets them.
    """
    if prompt.strategy == "tools":
        rule = "You decide the next step by calling exactly one tool. Finishing and asking a person are tools too."
        intents = "The tools:\n" + describe_intents(prompt.intents, prompt.approvals, shapes=False)
        question = NEXT_TOOL_QUESTION
    else:
        rule = (
            "You decide the next step. Always answer with exactly one JSON object and nothing else; "
            'its "intent" field names the step. Finishing and asking a person are intents too.'
        )
        intents = "The intents:\n" + describe_intents(prompt.intents, prompt.approvals)
        question = NEXT_STEP_QUESTION
    system = "\n\n".join([prompt.instructions.strip(), rule, intents])
    context = list(prompt.context)
    if context and context[-1].role == "user" and not context[-1].tool_calls:
        last = context[-1]
        context[-1] = Message("user", f"{last.content}\n\n{question}")
    else:
        context.append(Message("user", question))
    return [Message("system", system), *context]


def describe_intents(
    intents: Sequence[type[Intent]], approvals: frozenset[str] = frozenset(), *, shapes: bool = True
) -> str:
    """One compact entry per intent: its name, what it does, and the JSON shape to write.

    `shapes=False` leaves the shapes out, for a model that gets them as tool definitions.

    Example:
        ```python
        from threadloom.intents import DoneForNow
        from threadloom.prompts import describe_intents

        assert describe_intents([DoneForNow]).splitlines() == [
            "- done_for_now: Finish: the work is done, or there is nothing more to do until someone writes again.",
            '  {"intent": "done_for_now", "message": string /* what to tell the human: the outcome, in a sentence or two */}',
        ]
        ```
    """
    return _describe_intents(tuple(intents), frozenset(approvals), shapes)


# Pydantic builds a model's JSON schema anew on every call (about 1 ms for a handful of intents), and
# the default prompt asks for it at every step: the description is a pure function of the intent
# classes, so it is computed once per set. Bounded, since tools may be made at run time.
@functools.lru_cache(maxsize=256)
def _describe_intents(intents: tuple[type[Intent], ...], approvals: frozenset[str], shapes: bool) -> str:
    entries: list[str] = []
    for model in intents:
        name = intent_name(model)
        schema = model.model_json_schema()
        doc = (model.__doc__ or "").strip().splitlines()
        note = " (a person approves it before it runs)" if name in approvals else ""
        entries.append(f"- {name}: {_plain(doc[0]) if doc else ''}{note}".rstrip(": "))
        if shapes:
            entries.append("  " + _object_to_text(schema, schema.get("$defs", {}), intent=name))
    return "\n".join(entries)


# Docstrings cite the 12-factor pages ("(factor 7)", "(factors 1, 4, 7)"): documentation for people,
# noise to the model, so the descriptions it reads leave those references out.
_FACTOR_REFERENCE = re.compile(r"\s*\(factors? \d+(?:(?:,| and|, and) \d+)*\)", re.IGNORECASE)


def _plain(text: str) -> str:
    return _FACTOR_REFERENCE.sub("", text)


def schema_to_text(schema: Mapping[str, Any], defs: Mapping[str, Any] | None = None) -> str:
    """A JSON Schema as a compact TypeScript-like type: `{"tag": string, "env": "a" | "b"}`.

    A type that holds itself (`Node.children: list[Node]`) is written whole once, then by its name.
    """
    return _type_text(schema, defs if defs is not None else cast(Mapping[str, Any], schema.get("$defs", {})), ())


def _type_text(schema: Mapping[str, Any] | bool, defs: Mapping[str, Any], expanding: tuple[str, ...]) -> str:
    if not isinstance(schema, Mapping):  # a boolean schema: `true` takes anything (a bare `dict`'s values)
        return "never" if schema is False else "any"
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        if name in expanding:
            return name
        return _type_text(defs.get(name, {}), defs, (*expanding, name))
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(_type_text(s, defs, expanding) for s in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return f"[{_type_text(schema.get('items', {}), defs, expanding)}, ...]"
    if kind == "object" and "properties" in schema:
        return _object_to_text(schema, defs, expanding=expanding)
    if kind == "object":
        return f"{{string: {_type_text(schema.get('additionalProperties') or {}, defs, expanding)}}}"
    return str(kind or "any")


def _object_to_text(
    schema: Mapping[str, Any], defs: Mapping[str, Any], intent: str | None = None, expanding: tuple[str, ...] = ()
) -> str:
    required = set(schema.get("required", ()))
    parts: list[str] = [f'"intent": "{intent}"'] if intent else []
    for key, sub in schema.get("properties", {}).items():
        if key == "intent" and intent:
            continue
        optional = "" if key in required else "?"
        text = f'"{key}"{optional}: {_type_text(sub, defs, expanding)}'
        # A boolean schema (`false`) has no description.
        described: object = cast("Mapping[str, Any]", sub).get("description") if isinstance(sub, Mapping) else None
        if described and intent:
            text += f" /* {_plain(str(described))} */"
        parts.append(text)
    return "{" + ", ".join(parts) + "}"
