"""Models: the `Model` protocol, the scripted double, model strings, and what calls cost.

Provider models live in their own modules behind extras and are imported by name:
`threadloom.models.openai.OpenAIModel` (extra `openai`), or through a model string,
`Agent(model="openai:gpt-4.1-mini")`.
"""

from ._infer import infer_model
from .base import Completion, Model, ModelRequest, ModelSettings, Strategy, ToolDefinition, Usage
from .fallback import FallbackModel
from .pricing import PRICES, PRICES_AS_OF, Cost, Price, cost, load_prices, price_for
from .scripted import ScriptedModel, ScriptedOutput

__all__ = [
    "PRICES",
    "PRICES_AS_OF",
    "Completion",
    "Cost",
    "FallbackModel",
    "Model",
    "ModelRequest",
    "ModelSettings",
    "Price",
    "ScriptedModel",
    "ScriptedOutput",
    "Strategy",
    "ToolDefinition",
    "Usage",
    "cost",
    "infer_model",
    "load_prices",
    "price_for",
]
