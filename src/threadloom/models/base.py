"""The `Model` protocol: the exact messages go in, the model's raw answer comes out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..context import Message

__all__ = ["Completion", "Model", "ModelRequest"]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """Everything a model is sent for one step."""

    messages: tuple[Message, ...]
    """The exact rendered messages (`agent.render(thread)`)."""
    output_schema: Mapping[str, Any]
    """JSON Schema of the agent's intent union: what the answer must be."""
    intent_names: tuple[str, ...]
    """The intent names the model may choose from, in the agent's order."""


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer to one request."""

    text: str
    """The raw text the model produced; `parsing.parse` turns it into an intent."""
    model: str
    """The name of the model that answered."""


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
