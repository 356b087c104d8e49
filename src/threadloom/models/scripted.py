"""`ScriptedModel`: a model that replays given outputs, so agents run offline and deterministically."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..exceptions import ScriptExhausted, UserError
from ..messages import Message
from .base import Completion, ModelRequest

__all__ = ["ScriptedModel", "ScriptedOutput"]

ScriptedOutput = str | Completion | Callable[[Sequence[Message]], str]
"""A raw model output, a whole `Completion` (to script a stop reason or usage), or a function of the
rendered messages that returns one."""


class ScriptedModel:
    """Replays raw outputs in order and records every request it was sent.

    Example:
        ```python
        import asyncio

        from threadloom.messages import Message
        from threadloom.models import ModelRequest, ScriptedModel

        model = ScriptedModel(['{"intent": "done_for_now", "message": "hi"}'])
        request = ModelRequest(messages=(Message("user", "hello"),), output_schema={}, intent_names=())
        completion = asyncio.run(model.complete(request))
        assert completion.text.startswith('{"intent"') and model.requests == [request]
        ```
    """

    def __init__(
        self, outputs: Iterable[ScriptedOutput], *, name: str = "scripted", keep_requests: bool = True
    ) -> None:
        """Make a model that answers request *n* with `outputs[n]`.

        Args:
            outputs: Raw outputs (strings, exactly as a model would write them), whole `Completion`s
                (returned as they are), or functions that get the rendered messages and return one.
            name: The model name recorded with each completion.
            keep_requests: Record every request in `requests` (for tests to look at). Pass False for
                long runs (benchmarks, load tests) to keep none, as a real model's client does: a
                kept prompt stays alive, so the context cannot grow it in place at the next step
                and copies the whole text instead, a cost that grows with the thread.

        Raises:
            UserError: An output is neither a string nor a callable.
        """
        self._outputs: list[ScriptedOutput] = list(outputs)
        for i, output in enumerate(self._outputs):
            if not isinstance(output, str | Completion) and not callable(output):
                raise UserError(
                    f"ScriptedModel output {i} is a {type(output).__name__}; give a str, a Completion or a function"
                )
        self._name = name
        self._keep = keep_requests
        self._asked = 0
        self.requests: list[ModelRequest] = []
        """Every request sent, in order (none when made with `keep_requests=False`)."""

    @property
    def name(self) -> str:
        """The model name recorded with each completion."""
        return self._name

    @property
    def remaining(self) -> int:
        """How many outputs are left to replay."""
        return len(self._outputs) - self._asked

    async def complete(self, request: ModelRequest) -> Completion:
        """Answer with the next scripted output.

        Raises:
            ScriptExhausted: Every output was already used.
        """
        number = self._asked + 1
        if number > len(self._outputs):
            raise ScriptExhausted(
                f"ScriptedModel was asked for output {number} but the script has {len(self._outputs)}; "
                "add outputs for the steps the agent takes",
                requested=number,
                available=len(self._outputs),
            )
        self._asked = number
        if self._keep:
            self.requests.append(request)
        output = self._outputs[number - 1]
        if isinstance(output, Completion):
            return output
        text: Any = output if isinstance(output, str) else output(request.messages)
        if inspect.isawaitable(text):
            text = await text
        if not isinstance(text, str):
            raise UserError(f"ScriptedModel output {number - 1} returned a {type(text).__name__}, not a str")
        return Completion(text=text, model=self._name)
