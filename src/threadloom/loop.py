"""The loop: plain code that switches on the thread's derived state (factor 8).

Each turn reads `thread.state` and does one thing: run a recorded tool call, escalate at a limit,
or ask the model for the next step and record it. It stops whenever the thread is not `ready`,
so the same loop resumes a thread loaded from anywhere (factors 6 and 12).

The loop knows no `Agent`: it takes what it needs (the step, the tools, the hook, the limits) as
arguments, and `Agent.run` passes its own.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import JsonValue, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from ._call_redaction import CallRedaction
from ._result_limit import too_large
from .context import DEFAULT_SECRET_PATTERN, redact
from .events import Event
from .exceptions import ModelError, OverTokenBudget, ToolRetry, UserError
from .intents import Tool
from .state import ERROR, REQUEST_HUMAN_INPUT, TOOL_CALL, TOOL_RESPONSE, TOOL_STARTED, RunnableCall, ThreadState
from .thread import Thread

__all__ = ["MAX_OUTPUT_CHARS", "AfterStep", "Limits", "Save", "Step", "format_error", "maybe_await", "run"]

_T = TypeVar("_T")
_MAX_ERROR_CHARS = 300
MAX_OUTPUT_CHARS = 500
"""How much of a model's unusable answer a model `error` event keeps (the model sees it again)."""


Save = Callable[[Thread], Awaitable[Thread]]
"""Persists the thread's unsaved events and returns the thread to go on with.

The loop calls it after each event it appends, except that a `tool_call` which runs at once is
saved together with its `tool_started` (both before the tool runs); a result is always saved on its
own. A durable driver (the runtime) writes the new events here; when another writer got there first
it may return the stored thread with the loop's events laid on top."""
Step = Callable[[Thread], Awaitable[Event]]
"""Asks the model once and returns the event that records its answer (`Agent.step`)."""
AfterStep = Callable[[Thread, Event], "Iterable[Event] | None | Awaitable[Iterable[Event] | None]"]
"""Called after each event the loop appends; return events to append after it (a judge's verdict)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """When the loop stops to ask a person instead of going on."""

    max_steps: int = 20
    """Model steps allowed between two human inputs."""
    max_consecutive_errors: int = 3
    """Failures of one tool (or bad model outputs) in a row."""


@dataclass(frozen=True, slots=True)
class _Run:
    """One run's arguments, passed down to the loop's moves."""

    tools: Mapping[str, Tool]
    prefetch: Sequence[Tool]
    after_step: AfterStep | None
    limits: Limits
    save: Save
    redaction: CallRedaction

    def find_tool(self, name: str) -> Tool | None:
        if name in self.tools:
            return self.tools[name]
        return next((t for t in self.prefetch if t.name == name), None)


async def _keep(thread: Thread) -> Thread:
    return thread


async def run(
    thread: Thread,
    step: Step,
    *,
    tools: Mapping[str, Tool] | None = None,
    prefetch: Sequence[Tool] = (),
    after_step: AfterStep | None = None,
    limits: Limits | None = None,
    save: Save | None = None,
    secret_pattern: re.Pattern[str] | None = None,
    secret_keys: Collection[str] = (),
) -> Thread:
    """Drive `thread` until it must stop (see `Agent.run`, which passes its own step and tools).

    Args:
        thread: The thread to continue.
        step: Asks the model for the next step and returns the event recording it.
        tools: The tools a recorded call may run, by name.
        prefetch: Tools run once per thread before the model first decides (factor 13).
        after_step: Hook run after each appended event.
        limits: When to stop and ask a person.
        save: Called as each step is recorded (see `Save`).
        secret_pattern: Keys secret to the caller besides `DEFAULT_SECRET_PATTERN`'s (the agent's
            context pattern): a call's values under them are scrubbed from the errors it records.
        secret_keys: Exact keys always secret, likewise (the context's `secret_keys`).

    Returns:
        The thread with every new event appended.
    """
    redaction = CallRedaction.of(secret_pattern, secret_keys)
    r = _Run(dict(tools or {}), tuple(prefetch), after_step, limits or Limits(), save or _keep, redaction)
    thread = await _prefetch(r, thread)
    while True:
        state = thread.state
        if state.status != "ready":
            return thread
        if state.runnable is not None:
            thread = await _execute(r, thread, state.runnable)
            continue
        escalation = _limit_reached(r.limits, thread, state)
        if escalation is not None:
            return await _record(r, thread, escalation)
        try:
            # A bad answer comes back as a model `error` event: the model's to fix, so the loop
            # records it (the next rendering tells the model what was wrong) and asks again.
            event = await step(thread)
        except (ModelError, OverTokenBudget) as exc:
            # The model could not be asked: record why and stop; a later run (or a worker) retries.
            data: dict[str, JsonValue] = {
                "source": "model",
                "error_type": type(exc).__name__,
                "message": format_error(exc),
            }
            return await _record(r, thread, Event(ERROR, data))
        if event.type == TOOL_CALL:
            thread = await _record_call(r, thread, event)
        else:
            thread = await _record(r, thread, event)


def format_error(exc: BaseException, *, secrets: Iterable[str] = ()) -> str:
    """An exception as one line for the model: no traceback, at most 300 characters.

    Secrets in it are redacted: a URL's password, a bearer token, and each of `secrets` (the secret
    arguments of the call that raised it, which its message may quote).

    Example:
        ```python
        from threadloom.loop import format_error

        error = ConnectionRefusedError(chr(10).join(["connection refused on port 8080", "  (and more lines)"]))
        assert format_error(error) == "ConnectionRefusedError: connection refused on port 8080"
        ```
    """
    if isinstance(exc, ValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()]
        text = "invalid arguments: " + "; ".join(problems)
    else:
        message = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__
    # Before the cut, which could split a URL's password from its `@` or keep a secret's head.
    text = str(redact(text, DEFAULT_SECRET_PATTERN, secrets=secrets))
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


async def maybe_await(value: _T | Awaitable[_T]) -> _T:
    """`value`, awaited first if a hook returned an awaitable (hooks may be sync or async)."""
    if inspect.isawaitable(value):
        return await value
    return value


async def _prefetch(r: _Run, thread: Thread) -> Thread:
    """Run each prefetch tool once per thread, before the model first decides (factor 13)."""
    if not r.prefetch or thread.status != "ready":
        return thread
    done = {str(e.data.get("intent")) for e in thread.events if e.type == TOOL_CALL and isinstance(e.data, dict)}
    for tool in r.prefetch:
        if tool.name in done:
            continue
        call = Event(TOOL_CALL, {"intent": tool.name, "arguments": {}, "policy": "auto", "prefetch": True})
        thread = await _record_call(r, thread, call)
        if thread.status != "ready":
            break  # an `after_step` hook stopped the thread: the loop stops too
    return thread


async def _record_call(r: _Run, thread: Thread, call: Event) -> Thread:
    """Record a `tool_call`; one that runs at once is saved in the same write as its `tool_started`.

    Both are recorded before the tool runs, so one write keeps the guarantee (the call and its start
    are durable before any effect) with one commit fewer. A call that does not start at once (it
    waits for approval, the `after_step` hook changed the thread, the tool is unknown) is saved
    alone, as is whatever comes next.
    """
    thread = await _note(r, thread, call)
    runnable = thread.state.runnable
    if (
        thread.state.status != "ready"
        or runnable is None
        or runnable.call.id != call.id
        or runnable.started is not None
        or r.find_tool(runnable.intent) is None
    ):
        return await r.save(thread)
    # `_execute` records `tool_started` (a known tool, not started): its save writes the call too.
    return await _execute(r, thread, runnable)


async def _execute(r: _Run, thread: Thread, call: RunnableCall) -> Thread:
    """Run one recorded call; its result or its compacted error goes into the thread.

    `tool_started` is saved before the tool runs. Finding it without a result means a run stopped
    in between: an idempotent tool runs again with the same key, any other asks a person.
    """
    tool = r.find_tool(call.intent)
    error: Event | None = None
    if tool is None:
        error = _tool_error(call, "UnknownTool", f"no tool named {call.intent!r}; choose one of the listed intents")
    elif call.started is not None and not tool.idempotent:
        return await _record(r, thread, _outcome_unknown(call, r.redaction.arguments(call.arguments, tool)))
    else:
        if call.started is None:
            started: dict[str, JsonValue] = {
                "call_id": call.call.id,
                "intent": call.intent,
                "idempotency_key": call.call.id,
            }
            thread = await _record(r, thread, Event(TOOL_STARTED, started))
        # The call's secret arguments, which an error message may quote: sought only on a failure.
        secrets = functools.partial(r.redaction.secrets, call.arguments, tool)
        try:
            result = to_jsonable_python(await tool.invoke(call.arguments, key=call.call.id))
        except ToolRetry as exc:
            message = str(redact(str(exc), None, secrets=secrets()))
            error = _tool_error(call, "ToolRetry", message or "try again with other arguments")
        except ValidationError as exc:
            error = _tool_error(call, "ValidationError", format_error(exc, secrets=secrets()))
        except PydanticSerializationError as exc:
            error = _tool_error(call, "ResultNotJSON", r.redaction.not_json(exc, secrets()))
        except Exception as exc:  # the tool is user code: any failure becomes context (factor 9)
            error = _tool_error(call, type(exc).__name__, format_error(exc, secrets=secrets()))
        else:
            response = _response(r, call, tool, result, secrets)
            if response.type == TOOL_RESPONSE:
                return await _record(r, thread, response)
            error = response
    thread = await _record(r, thread, error)
    failures = thread.consecutive_errors.get(call.intent, 0)
    if failures >= r.limits.max_consecutive_errors:
        thread = await _record(r, thread, _escalation(thread, call.intent, failures))
    return thread


def _response(r: _Run, call: RunnableCall, tool: Tool, result: JsonValue, secrets: Callable[[], set[str]]) -> Event:
    """The call's `tool_response`, or the error that keeps out a result no thread should hold."""
    # Measured first: a huge result is refused before the event's check walks all of it.
    if message := too_large(tool.name, result, tool.max_result_chars):
        return _tool_error(call, "ResultTooLarge", message)
    try:
        return Event(TOOL_RESPONSE, {"call_id": call.call.id, "intent": call.intent, "result": result})
    except UserError:  # e.g. a lone surrogate: no store could hold it, so it never enters
        return _tool_error(call, "ResultNotStorable", r.redaction.not_storable(result, tool, secrets()))


def _outcome_unknown(call: RunnableCall, shown: JsonValue) -> Event:
    """Ask a person about a call that started but never finished: it may or may not have had its effect.

    The question quotes the call's arguments (`shown`, redacted) as text, where no renderer can tell
    a secret by its key any more.
    """
    arguments = json.dumps(shown, ensure_ascii=False)
    request = _human_request(
        f"`{call.intent}` was started but its outcome is unknown: the process running it stopped. "
        "Retry it, mark it as done, or abort the thread?",
        f"call {call.call.id}: {call.intent}({arguments})",
        reason="outcome_unknown",
    )
    assert isinstance(request.data, dict)
    return Event(
        REQUEST_HUMAN_INPUT,
        {
            **request.data,
            "format": "multiple_choice",
            "choices": ["retry", "mark_done", "abort"],
            "call_id": call.call.id,
        },
    )


def _tool_error(call: RunnableCall, error_type: str, message: str) -> Event:
    data: dict[str, JsonValue] = {
        "source": "tool",
        "intent": call.intent,
        "call_id": call.call.id,
        "error_type": error_type,
        "message": message,
    }
    return Event(ERROR, data)


def _escalation(thread: Thread, intent: str, failures: int) -> Event:
    """Hand the thread to a person after `failures` errors in a row (factors 7 and 9)."""
    return _human_request(
        f"`{intent}` failed {failures} times in a row. How should I proceed?",
        _recent_errors(thread, "intent", intent, failures),
        reason="tool_errors",
    )


def _recent_errors(thread: Thread, key: str, value: str, count: int) -> str:
    """The last `count` error messages whose `data[key] == value`, one compact line each."""
    found: list[str] = []
    for event in reversed(thread.events):
        if len(found) == count:
            break
        if event.type == ERROR and isinstance(event.data, dict) and event.data.get(key) == value:
            found.append(f"- {event.data.get('message')}")
    return "\n".join(reversed(found))


def _limit_reached(limits: Limits, thread: Thread, state: ThreadState) -> Event | None:
    if state.model_errors >= limits.max_consecutive_errors:
        return _human_request(
            f"The model failed to produce a valid next step {state.model_errors} times in a row. How should I proceed?",
            _recent_errors(thread, "source", "model", state.model_errors),
            reason="model_errors",
        )
    if state.steps >= limits.max_steps:
        return _human_request(
            f"I took {state.steps} steps (the limit is max_steps={limits.max_steps}) without finishing. "
            "Should I continue?",
            "",
            reason="max_steps",
        )
    return None


def _human_request(question: str, context: str, *, reason: str) -> Event:
    data: dict[str, Any] = {
        "question": question,
        "context": context,
        "urgency": "high",
        "format": "free_text",
        "choices": [],
        "reason": reason,
    }
    return Event(REQUEST_HUMAN_INPUT, data)


async def _record(r: _Run, thread: Thread, event: Event) -> Thread:
    """Append `event`, then whatever the `after_step` hook returns for it, and save."""
    return await r.save(await _note(r, thread, event))


async def _note(r: _Run, thread: Thread, event: Event) -> Thread:
    """Append `event`, then whatever the `after_step` hook returns for it; not saved yet."""
    thread = thread.append(event)
    if r.after_step is not None:
        extra = await maybe_await(r.after_step(thread, event))
        for item in extra or ():
            thread = thread.append(item)
    return thread
