"""Models: the `Model` protocol and its implementations."""

from .base import Completion, Model, ModelRequest, ModelSettings, Strategy, ToolDefinition, Usage
from .fallback import FallbackModel
from .scripted import ScriptedModel, ScriptedOutput

__all__ = [
    "Completion",
    "FallbackModel",
    "Model",
    "ModelRequest",
    "ModelSettings",
    "ScriptedModel",
    "ScriptedOutput",
    "Strategy",
    "ToolDefinition",
    "Usage",
]
