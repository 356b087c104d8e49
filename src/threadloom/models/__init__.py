"""Models: the `Model` protocol and its implementations."""

from .base import Completion, Model, ModelRequest, ModelSettings, Strategy, ToolDefinition, Usage
from .scripted import ScriptedModel, ScriptedOutput

__all__ = [
    "Completion",
    "Model",
    "ModelRequest",
    "ModelSettings",
    "ScriptedModel",
    "ScriptedOutput",
    "Strategy",
    "ToolDefinition",
    "Usage",
]
