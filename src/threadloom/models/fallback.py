"""`FallbackModel`: ask the next model when one cannot answer."""

from __future__ import annotations

from collections.abc import Sequence

from ..exceptions import ModelHTTPError, ModelTimeout, UserError
from .base import Completion, Model, ModelRequest, Strategy

__all__ = ["FallbackModel"]


class FallbackModel:
    """Tries models in order; the first that answers wins, and its completion names it.

    Only the errors in `fallback_on` move on to the next model: by default HTTP errors (rate
    limits, overload, unreachable servers, context too long, ...) and timeouts. Anything else,
    such as a `ParseError` or a `Refused`, is that model's answer and is raised at once. Each model
    retries on its own first (the SDKs' `max_retries`); falling back is the layer after that.

    Example:
        ```python
        import asyncio

        from threadloom import RateLimited
        from threadloom.messages import Message
        from threadloom.models import Completion, FallbackModel, ModelRequest, ScriptedModel


        class Busy:
            name = "busy"

            async def complete(self, request: ModelRequest) -> Completion:
                raise RateLimited("busy: HTTP 429", status_code=429)


        spare = ScriptedModel(['{"intent": "done_for_now", "message": "hi"}'], name="spare")
        model = FallbackModel([Busy(), spare])
        request = ModelRequest(messages=(Message("user", "hello"),), output_schema={}, intent_names=())
        completion = asyncio.run(model.complete(request))
        assert completion.model == "spare"
        ```
    """

    def __init__(
        self,
        models: Sequence[Model],
        *,
        fallback_on: tuple[type[Exception], ...] = (ModelHTTPError, ModelTimeout),
    ) -> None:
        """Make a model that asks `models[0]`, then `models[1]` if that fails, and so on.

        Args:
            models: The models, most preferred first.
            fallback_on: The errors that move on to the next model.

        Raises:
            UserError: No models, something that is not a model, or a `fallback_on` that is not
                a non-empty tuple of exception types.
        """
        if not models:
            raise UserError("FallbackModel needs at least one model, e.g. FallbackModel([primary, secondary])")
        for i, model in enumerate(models):
            if not callable(getattr(model, "complete", None)):
                raise UserError(f"FallbackModel: model {i} ({type(model).__name__}) has no `async complete(request)`")
        if not isinstance(fallback_on, tuple) or not fallback_on or not all(map(_is_error_type, fallback_on)):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UserError(
                f"fallback_on must be a tuple of exception types, e.g. (ModelHTTPError,), got {fallback_on!r}"
            )
        self.models: tuple[Model, ...] = tuple(models)
        """The models, in the order they are asked."""
        self.fallback_on = fallback_on
        """The errors that move on to the next model."""

    @property
    def name(self) -> str:
        """`fallback(first, second, ...)`; each completion names the model that actually answered."""
        return f"fallback({', '.join(model.name for model in self.models)})"

    @property
    def strategy(self) -> Strategy:
        """How the models are asked, when they all ask the same way; else `"prompted"`.

        The agent's default prompt follows it: a tool-calling chain is asked for one tool call,
        anything mixed gets the JSON shapes in the prompt, which every strategy's parser reads.
        """
        found = {getattr(model, "strategy", "prompted") for model in self.models}
        only = found.pop() if len(found) == 1 else "prompted"
        return only if only in ("tools", "json_schema") else "prompted"

    async def complete(self, request: ModelRequest) -> Completion:
        """The first answer any model gives, trying them in order.

        Raises:
            ModelError: The last model's error when every model failed with a `fallback_on` error;
                each failure is chained to the one before it (`__context__`), so a traceback shows all.
            Exception: An error not in `fallback_on`, from whichever model raised it.
        """
        return await self._ask(0, request)

    async def _ask(self, index: int, request: ModelRequest) -> Completion:
        try:
            return await self.models[index].complete(request)
        except self.fallback_on:
            if index == len(self.models) - 1:
                raise
            # Asked inside the handler, so the next model's error is chained to this one.
            return await self._ask(index + 1, request)


def _is_error_type(kind: object) -> bool:
    return isinstance(kind, type) and issubclass(kind, Exception)
