"""Model strings: `"openai:gpt-4.1-mini"`, `"anthropic:claude-sonnet-4-5"`, `"local"`."""

from __future__ import annotations

import os

from ..exceptions import UserError
from .base import Model

__all__ = ["infer_model"]

_PROVIDERS = ("openai:NAME", "anthropic:NAME", "local")


def infer_model(model: str) -> Model:
    """Build the model a model string names; each provider's module is imported only when named.

    - `"openai:NAME"`: `OpenAIModel(NAME)`; the key from `OPENAI_API_KEY`, and any OpenAI-compatible
      server from `OPENAI_BASE_URL` (extra `openai`);
    - `"anthropic:NAME"`: `AnthropicModel(NAME)`, the key from `ANTHROPIC_API_KEY` (extra `anthropic`);
    - `"local"`: `LocalModel()`, the embedded offline model (extra `local`).

    Example:
        ```python
        from threadloom import UserError
        from threadloom.models import infer_model

        try:
            infer_model("gpt-4.1-mini")
        except UserError as exc:
            assert "openai:gpt-4.1-mini" in str(exc)
        ```

    Args:
        model: The model string.

    Returns:
        A model ready to use.

    Raises:
        UserError: The string names no provider, or no model after the prefix.
        ImportError: The provider's extra is not installed (the message names it).
    """
    provider, sep, name = model.partition(":")
    provider = provider.strip().lower()
    name = name.strip()
    if provider == "local" and not sep:
        from .local import LocalModel

        return LocalModel()
    if sep and name and provider == "openai":
        from .openai import OpenAIModel

        return OpenAIModel(name, base_url=os.environ.get("OPENAI_BASE_URL") or None)
    if sep and name and provider == "anthropic":
        from .anthropic import AnthropicModel

        return AnthropicModel(name)
    hint = f"; did you mean 'openai:{model}'?" if not sep and model else ""
    raise UserError(f"unknown model string {model!r}: use one of {', '.join(_PROVIDERS)}{hint}")
