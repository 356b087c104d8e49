"""Models: the `Model` protocol and its implementations."""

from .base import Completion, Model, ModelRequest
from .scripted import ScriptedModel, ScriptedOutput

__all__ = ["Completion", "Model", "ModelRequest", "ScriptedModel", "ScriptedOutput"]
