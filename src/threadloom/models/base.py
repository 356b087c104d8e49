"""The `Model` protocol: the exact messages go in, the model's raw answer comes out.

Every model, however it is asked (native tool calling, a JSON Schema constraint or a plain
prompt), hands back text that `parsing.parse` turns into the agent's intent: a tool call comes
back as the flat intent object `{"intent": name, **arguments}`. So one tolerant parser, one error
path and one retry rule serve every provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

from pydantic import JsonValue

from ..intents import Intent, intent_name
from ..messages import Message
from ..state import Usage

__all__ = ["Completion", "Model", "ModelRequest", "ModelSettings", "Strategy", "ToolDefinition", "Usage"]

Strategy = Literal["tools", "json_schema", "prompted"]
"""How a model is made to answer with an intent.

- `"tools"`: native tool calling, each intent one tool, exactly one call required;
- `"json_schema"`: structured output constrained to the intent union's JSON Schema;
- `"prompted"`: the schema is in the prompt and the tolerant parser does the rest (any model).
"""


class ModelSettings(TypedDict, total=False):
    """Per-request options passed through to the provider; leave out what you do not set."""

    max_tokens: int
    """The most tokens the model may write for one answer."""
    temperature: float
    """Sampling temperature; 0 for the most repeatable answers."""
    top_p: float
    """Nucleus sampling cut-off."""
    seed: int
    """A seed, where the provider supports one."""
    stop: list[str]
    """Strings that end the answer."""
    timeout: float
    """Seconds to wait for one answer before `ModelTimeout`."""


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """One intent offered as a native tool (the `"tools"` strategy)."""

    name: str
    """The intent's name, which the model calls."""
    description: str
    """What the intent does (the tool's docstring)."""
    parameters: Mapping[str, Any]
    """JSON Schema of the intent's fields, without the `intent` discriminator."""

    @classmethod
    def of(cls, intent: type[Intent]) -> ToolDefinition:
        """One intent as a native tool: its fields' schema without the `intent` discriminator."""
        schema = intent.model_json_schema()
        description = str(schema.pop("description", ""))
        schema.pop("title", None)
        properties = {k: v for k, v in schema.get("properties", {}).items() if k != "intent"}
        required = [k for k in schema.get("required", ()) if k != "intent"]
        parameters: dict[str, Any] = {**schema, "type": "object", "properties": properties, "required": required}
        return cls(name=intent_name(intent), description=description, parameters=parameters)


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything a model is sent for one step."""

    messages: tuple[Message, ...]
    """The exact rendered messages (`agent.render(thread)`)."""
    output_schema: Mapping[str, Any]
    """JSON Schema of the agent's intent union: what the answer must be."""
    intent_names: tuple[str, ...]
    """The intent names the model may choose from, in the agent's order."""
    _: KW_ONLY
    tools: tuple[ToolDefinition, ...] = ()
    """The same intents as native tool definitions, for the `"tools"` strategy."""
    settings: ModelSettings = field(default_factory=lambda: ModelSettings())
    """Options for this request (max tokens, temperature, ...)."""


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer to one request."""

    text: str
    """The raw text the model produced (a tool call as `{"intent": name, **arguments}`)."""
    model: str
    """The name of the model that answered."""
    _: KW_ONLY
    usage: Usage = field(default_factory=Usage)
    """Tokens in, out and cached for this call."""
    latency_ms: float = 0.0
    """Wall-clock time of the call, in milliseconds."""
    stop_reason: str | None = None
    """Why the model stopped, as the provider says it (`"stop"`, `"tool_use"`, `"length"`, ...)."""
    strategy: Strategy = "prompted"
    """How the answer was obtained."""
    error: str | None = None
    """Why this answer cannot be an intent, written for the model (several tool calls, no call, prose
    where a tool call was required). The agent records it as a model `error` event, with this call's
    usage, and asks again, as it does for text that does not parse."""

    def record(self) -> dict[str, JsonValue]:
        """What the event of this answer keeps of the call (`data["model"]`, which `thread.usage` totals)."""
        return {
            "name": self.model,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cached_tokens": self.usage.cached_tokens,
            "latency_ms": round(self.latency_ms, 1),
            "strategy": self.strategy,
            "stop_reason": self.stop_reason,
        }


@runtime_checkable
class Model(Protocol):
    """Anything that can answer a `ModelRequest`; see `ScriptedModel` for the smallest one."""

    @property
    def name(self) -> str:
        """The model's name, recorded with what it produced."""
        ...

    async def complete(self, request: ModelRequest) -> Completion:
        """Answer one request.

        Raises:
            ModelError: The model could not answer.
        """
        ...
