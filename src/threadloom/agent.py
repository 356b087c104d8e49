"""`Agent`: a model, a prompt, tools with their policies, and limits; `next_step` and `reduce`."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, cast

from pydantic import JsonValue

from ._arguments import intent_arguments
from .context import Context
from .events import Event, storable_text
from .exceptions import ParseError, UserError
from .intents import (
    BUILTIN_INTENTS,
    Intent,
    Tool,
    WaitUntil,
    intent_name,
    intent_schema,
    intent_union,
)
from .intents import tool as make_tool
from .loop import MAX_OUTPUT_CHARS, AfterStep, Limits, Save
from .loop import run as run_loop
from .messages import Message
from .models._infer import infer_model
from .models.base import Completion, Model, ModelRequest, ModelSettings, Strategy, ToolDefinition
from .parsing import parse
from .prompts import Prompt, PromptInput, default_prompt
from .state import ERROR, TOOL_CALL
from .thread import Thread

__all__ = ["AfterStep", "Agent", "BeforeModel", "Offer", "Prefetch"]

BeforeModel = Callable[[Thread], "Thread | None | Awaitable[Thread | None]"]
"""Called before each model call; return a thread to show the model instead (e.g. compacted).

The returned thread is a view for this one call: the log itself is never rewritten.
"""
Prefetch = Tool | Callable[[], Any]
"""Something to fetch before the model first runs (factor 13): a tool without required arguments."""
Offer = Callable[[Thread], "Iterable[str | Tool | type[Intent]] | None"]
"""Narrows, per step, the intents the model may choose (factors 8 and 13); None offers them all."""

# Stop reasons by which providers say the answer hit its output-token limit (OpenAI chat, Anthropic,
# OpenAI responses): such an answer is cut off, whatever of it happens to parse.
_CUT_OFF = frozenset({"length", "max_tokens", "max_output_tokens"})

_DEFAULT_INSTRUCTIONS = "You are a careful agent. Work out the next step from the events so far."


class Agent:
    """A small, focused agent (factor 10): the model picks the next step, your code runs it.

    Example:
        ```python
        from threadloom import Agent, Thread, tool
        from threadloom.models import ScriptedModel


        @tool
        def add(a: int, b: int) -> int:
            '''Add two numbers.'''
            return a + b


        agent = Agent(
            name="calculator",
            model=ScriptedModel(['{"intent": "add", "a": 2, "b": 3}', '{"intent": "done_for_now", "message": "5"}']),
            tools=[add],
            instructions="Do the user's arithmetic with the tools.",
        )
        thread = agent.run_sync(Thread.start("user_input", {"text": "what is 2 + 3?"}))
        assert thread.status == "done" and thread.events[-2].data["result"] == 5
        ```
    """

    def __init__(
        self,
        *,
        name: str,
        model: Model | str,
        tools: Sequence[Tool] = (),
        instructions: str | None = None,
        prompt: Prompt | None = None,
        prefetch: Sequence[Prefetch] = (),
        context: Context | None = None,
        max_steps: int = 20,
        max_consecutive_errors: int = 3,
        can_wait: bool = False,
        before_model: BeforeModel | None = None,
        after_step: AfterStep | None = None,
        model_settings: ModelSettings | None = None,
        offer: Offer | None = None,
    ) -> None:
        """Configure an agent; nothing runs until `run` or `next_step`.

        Args:
            name: The agent's name (how a runtime finds it).
            model: What picks the next step: a model such as `ScriptedModel([...])` or
                `OpenAIModel(...)`, or a model string (`"openai:gpt-4.1-mini"`, `"anthropic:NAME"`,
                `"local"`) that `threadloom.models.infer_model` builds. A model with a `strategy`
                attribute of `"tools"` (`OpenAIModel`'s default) gets a prompt that asks for one
                tool call instead of a JSON object.
            tools: The tools the model may choose, each made with `@tool`.
            instructions: What the agent is for; goes first in the default prompt.
            prompt: Your own prompt function, replacing `default_prompt` (it still gets `instructions`).
            prefetch: Tools (or plain functions) without required arguments to run before the first
                model call; their results go into the thread as calls and results (factor 13).
            context: How the thread is rendered (format, renderers, redaction, token budget).
            max_steps: Model steps allowed between two human inputs before asking a person.
            max_consecutive_errors: Failures of one tool (or bad model outputs) in a row before
                the thread escalates to a person.
            can_wait: Offer the model `wait_until` (sleep until a time, durably; a runtime wakes it).
            before_model: Hook run before each model call (compaction, logging).
            after_step: Hook run after each appended event (judges, logging, metrics).
            model_settings: Options sent with every model call (max tokens, temperature, ...).
            offer: A plain function of the thread naming the intents the model may choose at this
                step (names, tools or intent classes; None for all). The prompt, the tool
                definitions sent and a local model's grammar follow it; an intent the model writes
                that is not offered is a compacted model error, never run.

        Raises:
            UserError: Bad names, duplicate tools, limits below 1, something that is not a tool, or
                a model string no provider answers to.
        """
        if not name or not isinstance(name, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UserError("Agent needs a name=, e.g. Agent(name='deploy_bot', ...)")
        if isinstance(model, str):
            model = infer_model(model)
        if not hasattr(model, "complete"):
            raise UserError(f"Agent {name!r}: model= must have `async complete(request)`, got {type(model).__name__}")
        if max_steps < 1 or max_consecutive_errors < 1:
            raise UserError(f"Agent {name!r}: max_steps and max_consecutive_errors must be at least 1")
        self.name = name
        self.model: Model = model
        self.model_settings: ModelSettings = ModelSettings(**(model_settings or {}))
        self.instructions = instructions if instructions is not None else _DEFAULT_INSTRUCTIONS
        self.prompt: Prompt = prompt or default_prompt
        self.max_steps = max_steps
        self.max_consecutive_errors = max_consecutive_errors
        self.before_model = before_model
        self.after_step = after_step
        self.offer = offer
        self.tools: dict[str, Tool] = {}
        for item in tools:
            if not isinstance(item, Tool):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise UserError(f"Agent {name!r}: {item!r} is not a tool; decorate the function with @tool")
            if item.name in self.tools or item.name in _BUILTIN_NAMES:
                raise UserError(f"Agent {name!r}: two intents are named {item.name!r}; give one tool name='...'")
            self.tools[item.name] = item
        self.prefetch: tuple[Tool, ...] = tuple(_as_prefetch_tool(item, name) for item in prefetch)
        waits = (WaitUntil,) if can_wait else ()
        self.intents: tuple[type[Intent], ...] = (*(t.intent for t in self.tools.values()), *BUILTIN_INTENTS, *waits)
        self.intent_type: Any = intent_union(self.intents)
        self._schema = intent_schema(self.intents)
        self._intent_names = tuple(intent_name(i) for i in self.intents)
        self._tool_definitions = tuple(ToolDefinition.of(i) for i in self.intents)
        # What a narrowed step sends, by the names offered: derived from the intents, built once each.
        self._narrowed: dict[tuple[str, ...], tuple[dict[str, Any], tuple[ToolDefinition, ...]]] = {}
        # Provider models say how they ask (`OpenAIModel(strategy=...)`); the prompt follows suit.
        strategy = getattr(model, "strategy", "prompted")
        self._strategy: Strategy = strategy if strategy in ("tools", "json_schema") else "prompted"
        secret_keys = {key for t in (*self.tools.values(), *self.prefetch) for key in t.secret_fields}
        base = context or Context()
        self.context = dataclasses.replace(base, secret_keys=frozenset(base.secret_keys) | secret_keys)

    def __repr__(self) -> str:
        return f"Agent(name={self.name!r}, tools={list(self.tools)!r})"

    # -- one step: pure rendering and the one model call ------------------------------------

    def render(self, thread: Thread) -> list[Message]:
        """Exactly the messages the model would get for this thread (without `before_model`)."""
        return self._render(thread, self.offered(thread))

    def _render(self, thread: Thread, offered: tuple[type[Intent], ...]) -> list[Message]:
        approvals = frozenset(n for n, t in self.tools.items() if t.policy == "approval")
        messages = self.context.render(thread)
        inputs = PromptInput(self.instructions, thread, tuple(messages), offered, approvals, self._strategy)
        return list(self.prompt(inputs))

    def offered(self, thread: Thread) -> tuple[type[Intent], ...]:
        """The intents the model may choose for this thread's next step (`offer`, else all of them).

        Raises:
            UserError: `offer` named an intent the agent does not have, or offered none.
        """
        chosen = self.offer(thread) if self.offer is not None else None
        if chosen is None:
            return self.intents
        names = {_offered_name(item) for item in chosen}
        if unknown := names.difference(self._intent_names):
            raise UserError(
                f"Agent {self.name!r}: offer() named {sorted(unknown)}, which are not its intents "
                f"({', '.join(self._intent_names)})"
            )
        if not names:
            raise UserError(f"Agent {self.name!r}: offer() offered no intent; return None to offer them all")
        return tuple(i for i in self.intents if intent_name(i) in names)

    def request(self, thread: Thread) -> ModelRequest:
        """The request the model gets for this thread: messages, the intent schema, tools and settings."""
        return self._request(thread, self.offered(thread))

    def _request(self, thread: Thread, offered: tuple[type[Intent], ...]) -> ModelRequest:
        messages = tuple(self._render(thread, offered))
        if offered == self.intents:
            schema, names, tools = self._schema, self._intent_names, self._tool_definitions
        else:
            names = tuple(intent_name(i) for i in offered)
            if names not in self._narrowed:
                self._narrowed[names] = (intent_schema(offered), tuple(ToolDefinition.of(i) for i in offered))
            schema, tools = self._narrowed[names]
        return ModelRequest(
            messages=messages,
            output_schema=schema,
            intent_names=names,
            tools=tools,
            settings=self.model_settings,
        )

    async def next_step(self, thread: Thread) -> Intent:
        """Ask the model for the next step: the only model call. Does not change the thread.

        Returns:
            The intent the model chose, typed (one of `agent.intents`).

        Raises:
            ParseError: The model's answer is not a valid intent (the message says why, for the model).
            ModelError: The model could not answer.
            OverTokenBudget: The rendered thread is over the context's token budget.
        """
        answer, _ = await self._answer(thread)
        if isinstance(answer, ParseError):
            raise answer
        return answer

    async def step(self, thread: Thread) -> Event:
        """Ask the model once and return the event that records its answer. Does not change the thread.

        The event is what `to_event` makes of the chosen intent or, when the answer is not a valid
        intent, a compact model `error` the loop feeds back. Either way `data["model"]` records the
        call: model name, tokens in / out / cached, latency, strategy and stop reason (`thread.usage`
        totals them; the rendered context leaves them out).

        Raises:
            ModelError: The model could not answer.
            OverTokenBudget: The rendered thread is over the context's token budget.
        """
        answer, completion = await self._answer(thread)
        if isinstance(answer, ParseError):
            return _model_error(answer, completion)
        assert completion is not None  # an intent was parsed from it
        try:
            return self._recorded(answer, completion.record())
        except UserError as exc:  # a value no store can hold (Event refuses it): the model's to fix
            problem = ParseError(f"the answer holds a value that cannot be stored: {exc}", text=completion.text)
            return _model_error(problem, completion)

    async def _answer(self, thread: Thread) -> tuple[Intent | ParseError, Completion | None]:
        """One step, straight down: the view (`before_model`), the request, the model's answer, the intent.

        Returns the intent with the completion it came from or, when the answer is unusable, the
        `ParseError` that says why (with the completion, unless the model refused to return one).
        """
        view = thread
        if self.before_model is not None:
            replaced = self.before_model(thread)
            if inspect.isawaitable(replaced):
                replaced = await replaced
            if replaced is not None:
                view = replaced
        offered = self.offered(view)
        request = self._request(view, offered)
        try:
            completion = await self.model.complete(request)
        except ParseError as exc:  # a model that judged its own answer unusable before returning it
            return exc, None
        if completion.error is not None:
            return ParseError(completion.error, text=completion.text), completion
        if completion.stop_reason in _CUT_OFF:
            cut = (
                f"your answer was cut off after {completion.usage.output_tokens} tokens (the output limit); "
                "answer again with one complete, shorter JSON object"
            )
            return ParseError(cut, text=completion.text), completion
        try:
            intent: Intent = parse(completion.text, self.intent_type)
        except ParseError as exc:
            return exc, completion
        if offered is not self.intents and type(intent) not in offered:
            names = ", ".join(intent_name(i) for i in offered)
            chosen = f"`{intent_name(type(intent))}` is not available at this step; choose one of: {names}"
            return ParseError(chosen, text=completion.text), completion
        return intent, completion

    def to_event(self, intent: Intent) -> Event:
        """The event that records the model's choice: a `tool_call`, or the built-in intent itself."""
        return self._recorded(intent, None)

    def _recorded(self, intent: Intent, record: JsonValue) -> Event:
        """`to_event`, with the model call's record under `model` unless it is None (one event made, checked once)."""
        name = intent_name(type(intent))
        fields = intent_arguments(intent)
        tool = self.tools.get(name)
        data: dict[str, JsonValue] = fields
        if tool is not None:
            data = {"intent": name, "arguments": fields, "policy": tool.policy}
        if record is not None:
            data["model"] = record
        return Event(name if tool is None else TOOL_CALL, data)

    def reduce(self, thread: Thread, event: Event) -> Thread:
        """`(thread, event) -> thread` (factor 12): pure, the old thread is left as it was."""
        return thread.append(event)

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, thread: Thread, *, save: Save | None = None) -> Thread:
        """Run until the thread must stop: done, waiting for a person, or out of steps.

        `auto` tools run and the loop continues; an `approval` tool's call is recorded and the
        thread waits (`waiting_approval`); asking a person waits (`waiting_human`);
        `done_for_now` ends it (`done`). Failures become compact `error` events.

        Args:
            thread: The thread to continue.
            save: Called after every appended event with the thread so far (a `tool_call` that runs
                at once is saved with its `tool_started`: the call's save comes just before it
                runs); returns the thread to go on with (a durable runtime persists here).

        Returns:
            The thread with every new event appended.
        """
        return await run_loop(
            thread,
            self.step,
            tools=self.tools,
            prefetch=self.prefetch,
            after_step=self.after_step,
            limits=Limits(self.max_steps, self.max_consecutive_errors),
            save=save,
            secret_pattern=cast(re.Pattern[str] | None, self.context.redact),  # compiled by the context
            secret_keys=self.context.secret_keys,
        )

    def run_sync(self, thread: Thread) -> Thread:
        """`run` for code without an event loop.

        Raises:
            UserError: Called from inside a running event loop (use `await agent.run(...)`).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run(thread))
        raise UserError("run_sync() cannot run inside an event loop; use `await agent.run(thread)`")


_BUILTIN_NAMES = frozenset(intent_name(i) for i in (*BUILTIN_INTENTS, WaitUntil))


def _model_error(exc: ParseError, completion: Completion | None) -> Event:
    data: dict[str, JsonValue] = {"source": "model", "error_type": "ParseError", "message": str(exc)}
    data["output"] = storable_text(exc.text[:MAX_OUTPUT_CHARS])
    if completion is not None:
        data["model"] = completion.record()
    return Event(ERROR, data)


def _offered_name(item: str | Tool | type[Intent]) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Tool):
        return item.name
    return intent_name(item)


def _as_prefetch_tool(item: Prefetch, agent: str) -> Tool:
    tool = item if isinstance(item, Tool) else make_tool(item)
    required = [n for n, f in tool.arguments.model_fields.items() if f.is_required()]
    if required:
        raise UserError(f"Agent {agent!r}: prefetch {tool.name!r} needs arguments {required}; prefetch takes none")
    return tool
