"""`AnthropicModel`: Claude through the official `anthropic` SDK (the extra `anthropic`)."""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast, get_args

from ..exceptions import (
    ContextWindowExceeded,
    ModelHTTPError,
    ModelTimeout,
    ParseError,
    ProviderError,
    RateLimited,
    Refused,
    UserError,
)
from ..messages import Message
from ._reading import read, typed
from ._secrets import hide_keys, redacted_cause
from .base import Completion, ModelRequest, ModelSettings, Strategy, ToolDefinition, Usage

try:
    import anthropic
    from anthropic.types import (
        CacheControlEphemeralParam,
        MessageParam,
        OutputConfigParam,
        TextBlockParam,
        ToolChoiceAnyParam,
        ToolParam,
        ToolResultBlockParam,
        ToolUseBlockParam,
    )
except ImportError as exc:  # pragma: no cover - the test environment installs every extra
    raise ImportError("AnthropicModel needs the `anthropic` SDK: pip install 'threadloom[anthropic]'") from exc

# Structured outputs, `transform_schema` and the `omit` sentinel came late to the SDK; without
# them this module cannot work, so say so at import rather than at the first request.
if not (hasattr(anthropic, "transform_schema") and hasattr(anthropic, "omit")):  # pragma: no cover - the lock pins 2.10
    raise ImportError(
        f"AnthropicModel needs a newer `anthropic` SDK than {anthropic.__version__} (tested with 2.10): "
        "pip install -U 'threadloom[anthropic]'"
    )

if TYPE_CHECKING:
    import httpx2

__all__ = ["AnthropicModel"]

_DEFAULT_MAX_TOKENS = 4096
_EPHEMERAL: CacheControlEphemeralParam = {"type": "ephemeral"}
# Anthropic's overloaded status: a 5xx, but it means "try later", like a 429.
_OVERLOADED = 529
_TOO_LONG = re.compile(r"prompt is too long|context (window|length)", re.IGNORECASE)
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")

Block = TextBlockParam | ToolUseBlockParam | ToolResultBlockParam


class AnthropicModel:
    """Claude through the Messages API; every strategy ends in the flat intent JSON `parsing.parse` reads.

    - `"tools"` (default): each intent is a tool and `tool_choice` requires exactly one call; the
      call comes back as `{"intent": name, **input}`. Several calls, or none, raise `ParseError`,
      which the loop records as a compact `error` event before asking again.
    - `"json_schema"`: structured outputs (`output_config.format`) constrained to the intent
      union's JSON Schema, made to fit the API's subset by `anthropic.transform_schema`.
    - `"prompted"`: plain text; the prompt describes the intents and the tolerant parser reads
      the answer. Works with any Claude model.

    With `cache_prompt` the stable prefix (tools and system prompt) carries `cache_control`
    breakpoints, so repeated steps of a thread read it from Anthropic's prompt cache.
    Timeouts, rate limits (429), overload (529), 408/409 and 5xx answers are retried by the SDK itself
    (`max_retries`, honouring `retry-after`); what is left maps onto `ModelError`.

    Example:
        ```python
        from threadloom import Agent
        from threadloom.models.anthropic import AnthropicModel

        model = AnthropicModel("claude-sonnet-4-5", settings={"max_tokens": 1024}, max_retries=4)
        agent = Agent(name="deploy_bot", model=model, instructions="You deploy the backend.")
        ```
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        strategy: Strategy = "tools",
        settings: ModelSettings | None = None,
        max_retries: int = anthropic.DEFAULT_MAX_RETRIES,
        timeout: float | None = None,
        http_client: httpx2.AsyncClient | None = None,
        cache_prompt: bool = True,
    ) -> None:
        """Make a model that asks Claude through an `anthropic.AsyncAnthropic` client.

        Args:
            model: The model id, e.g. `"claude-sonnet-4-5"`.
            api_key: The API key; by default the SDK reads `ANTHROPIC_API_KEY` (or its other sources).
            base_url: Another endpoint that speaks the Messages API (a proxy, a gateway, a test server).
            strategy: How the model is made to answer with an intent: `"tools"`, `"json_schema"` or
                `"prompted"`.
            settings: Defaults for every request; a request's own settings win key by key.
                `temperature` and `top_p` go into the request body as given (this SDK version has no
                named parameter for them); Anthropic has no `seed`, so it is not sent.
            max_retries: Retries the SDK makes on timeouts, connection errors, 408, 409, 429, 529 and other 5xx.
            timeout: Seconds to wait for one answer; the SDK's default (10 minutes) when None.
            http_client: An `httpx2.AsyncClient` for the SDK to use (proxies, transports).
            cache_prompt: Put prompt-cache breakpoints on the system prompt and the last tool.

        Raises:
            UserError: An unknown strategy, or a negative `max_retries`.
        """
        if strategy not in get_args(Strategy):
            raise UserError(f"strategy must be one of {get_args(Strategy)}, got {strategy!r}")
        if max_retries < 0:
            raise UserError(f"max_retries must be 0 or more, got {max_retries}")
        self._model = model
        self.strategy: Strategy = strategy
        """How the model is made to answer with an intent."""
        self.settings: ModelSettings = settings or ModelSettings()
        """Defaults for every request."""
        self.cache_prompt = cache_prompt
        """Whether the system prompt and the tools carry `cache_control` breakpoints."""
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            timeout=timeout if timeout is not None else anthropic.DEFAULT_TIMEOUT,
            http_client=http_client,
        )
        """The SDK client; use it for anything this class does not wrap."""

    @property
    def name(self) -> str:
        """The model id this instance asks for."""
        return self._model

    async def aclose(self) -> None:
        """Close the SDK client and its connections (an `http_client` you passed in too)."""
        await self.client.close()

    async def complete(self, request: ModelRequest) -> Completion:
        """Ask Claude for the next intent.

        Raises:
            ParseError: With `"tools"`, the answer did not call exactly one tool.
            RateLimited: 429 or 529 (overloaded) after the SDK's retries.
            ContextWindowExceeded: The prompt (or the prompt and the answer) does not fit the model's context window.
            ProviderError: Any other error status, an unreachable server (status 0) or a body
                that is not a Messages response.
            ModelTimeout: No answer within the timeout.
            Refused: Claude declined to answer (`stop_reason == "refusal"`).
            UserError: `"tools"` without tool definitions in the request.
        """
        settings: ModelSettings = {**self.settings, **request.settings}
        system, messages = _convert(request.messages, native_tools=self.strategy == "tools")
        if system and self.cache_prompt:
            system[-1]["cache_control"] = _EPHEMERAL
        tools = self._tools(request)
        # "any" forces a call; with parallel use off the model makes exactly one.
        choice: ToolChoiceAnyParam = {"type": "any", "disable_parallel_tool_use": True}
        output: OutputConfigParam | anthropic.Omit = anthropic.omit
        if self.strategy == "json_schema":
            output = {"format": {"type": "json_schema", "schema": _output_schema(request)}}
        # This SDK version has no named sampling parameters; what the user set goes in the body as given.
        sampling = {key: value for key, value in settings.items() if key in ("temperature", "top_p")}
        started, api_key = time.perf_counter(), self.client.api_key
        try:
            response = await self.client.messages.create(
                model=self._model,
                max_tokens=settings.get("max_tokens", _DEFAULT_MAX_TOKENS),
                messages=messages,
                system=system or anthropic.omit,
                tools=tools or anthropic.omit,
                tool_choice=choice if tools else anthropic.omit,
                output_config=output,
                stop_sequences=settings["stop"] if "stop" in settings else anthropic.omit,
                extra_body=sampling or None,
                # Always given: left out, the SDK refuses a large max_tokens without streaming (ValueError).
                timeout=settings["timeout"] if "timeout" in settings else self.client.timeout,
            )
        except anthropic.APITimeoutError as exc:
            failure, cause = ModelTimeout(f"{self._model} did not answer in time"), exc
        except anthropic.APIStatusError as exc:
            failure, cause = _status_error(exc, self._model, api_key), exc
        except anthropic.APIConnectionError as exc:
            message = hide_keys(f"could not reach {self._model}: {exc}", api_key)
            failure, cause = ProviderError(message, status_code=0, model=self._model), exc
        except json.JSONDecodeError as exc:
            # A success status with a JSON content type but a broken body: the SDK's parser gives up.
            failure, cause = _not_a_message(self._model, 200, exc.doc, api_key), exc
        else:
            return self._completion(response, (time.perf_counter() - started) * 1000)
        # Raised outside the except blocks, so the SDK's exception (which may quote the key and holds
        # the request's headers) is neither the traceback's cause nor its context.
        raise failure from redacted_cause(cause, api_key)

    def _completion(self, response: anthropic.types.Message, latency_ms: float) -> Completion:
        """The SDK's answer as a `Completion`, or the error it is."""
        api_key = self.client.api_key
        if not _is_message(response):
            # The SDK hands back the raw text of a non-JSON body, and a lax model of any other JSON.
            raise _not_a_message(
                self._model, 200, response if isinstance(response, str) else response.to_dict(), api_key
            )
        return read(self._model, response, api_key, lambda answer: self._answered(answer, latency_ms))

    def _answered(self, response: anthropic.types.Message, latency_ms: float) -> Completion:
        """The answer as a `Completion`; `read` makes a malformed one a `ProviderError`."""
        if response.stop_reason == "refusal":
            details = response.stop_details
            why = (details.explanation or details.category) if details is not None else None
            raise Refused(f"{self._model} declined to answer" + (f": {why}" if why else ""))
        if response.stop_reason == "model_context_window_exceeded":
            # The prompt fit, but not the answer: the same step would fail again until the thread is compacted.
            raise ContextWindowExceeded(
                f"{self._model} ran out of context window while answering",
                status_code=200,
                body=response.to_dict(),
                model=self._model,
            )
        usage = response.usage
        # Anthropic counts cached and cache-writing tokens apart; ours are all input tokens.
        cache_read = typed(usage.cache_read_input_tokens or 0, int)
        written = typed(usage.cache_creation_input_tokens or 0, int)
        used = Usage(typed(usage.input_tokens, int) + written + cache_read, typed(usage.output_tokens, int), cache_read)
        return Completion(
            text=self._answer(response),
            model=typed(response.model or self._model, str),
            usage=used,
            latency_ms=latency_ms,
            stop_reason=response.stop_reason,
            strategy=self.strategy,
        )

    def _tools(self, request: ModelRequest) -> list[ToolParam]:
        """The request's intents as Anthropic tools (`"tools"` strategy only), the last one a cache breakpoint."""
        if self.strategy != "tools":
            return []
        if not request.tools:
            raise UserError(
                f"{self._model} uses strategy='tools' but the request has no tool definitions; "
                "build it with the agent, or use strategy='prompted'"
            )
        tools = [_tool(t) for t in request.tools]
        if self.cache_prompt:
            tools[-1]["cache_control"] = _EPHEMERAL
        return tools

    def _answer(self, response: anthropic.types.Message) -> str:
        """The raw text `parsing.parse` gets: a tool call as the flat intent JSON."""
        text = "".join(typed(block.text, str) for block in response.content if block.type == "text")
        if self.strategy != "tools":
            return text
        calls = [block for block in response.content if block.type == "tool_use"]
        if len(calls) == 1:
            return _intent_json(typed(calls[0].name, str), calls[0].input)
        if not calls:
            raise ParseError("answer by calling exactly one of the tools; your answer called none", text=text)
        names = ", ".join(call.name for call in calls)
        raise ParseError(
            f"answer by calling exactly one tool; your answer called {len(calls)} ({names})",
            text="\n".join(_intent_json(call.name, call.input) for call in calls),
        )


def _intent_json(name: str, arguments: object) -> str:
    """`{"intent": name, **arguments}`: the name wins over an argument of the same key.

    Raises:
        TypeError: `arguments` is not an object (a malformed `tool_use` block).
    """
    fields = cast(dict[str, object], typed(arguments, dict))
    return json.dumps({"intent": name, **{k: v for k, v in fields.items() if k != "intent"}}, ensure_ascii=False)


def _tool(definition: ToolDefinition) -> ToolParam:
    schema = dict(definition.parameters) or {"type": "object", "properties": {}}
    return {"name": definition.name, "description": definition.description, "input_schema": schema}


def _output_schema(request: ModelRequest) -> dict[str, Any]:
    """The intent union's schema in the subset structured outputs accept, with `intent` required.

    The `intent` field has a default in pydantic's schema, so it is not `required`; a constrained
    model could then leave it out, and the answer would not name its intent.
    """
    try:
        schema = anthropic.transform_schema(copy.deepcopy(dict(request.output_schema)))
    except ValueError as exc:
        raise UserError(f"the request's output_schema cannot be used for structured outputs: {exc}") from exc
    for variant in [schema, *cast(dict[str, Any], schema.get("$defs", {})).values()]:
        properties = variant.get("properties")
        if isinstance(properties, dict) and "intent" in properties:
            required = cast(list[str], variant.setdefault("required", []))
            if "intent" not in required:
                required.insert(0, "intent")
    return schema


def _convert(messages: Sequence[Message], *, native_tools: bool) -> tuple[list[TextBlockParam], list[MessageParam]]:
    """Our messages as the Messages API wants them: `(system blocks, messages)`.

    System messages go to the `system` parameter. Tool calls become `tool_use` blocks and tool
    messages `tool_result` blocks when the model is offered tools; otherwise (the API refuses
    tool blocks in a request without tools) a call is the flat intent JSON the model would have
    written and a result is user text. Consecutive turns of one role are merged into one message,
    so a tool result and the user text after it form the single user turn the API expects.
    """
    system: list[TextBlockParam] = []
    turns: list[tuple[str, list[Block]]] = []
    names: dict[str, str] = {}  # call id -> intent name, to label a result in text form

    def add(role: str, block: Block) -> None:
        if turns and turns[-1][0] == role:
            turns[-1][1].append(block)
        else:
            turns.append((role, [block]))

    for message in messages:
        if message.role == "system":
            if message.content:
                system.append({"type": "text", "text": message.content})
        elif message.role == "tool":
            call_id = message.tool_call_id or ""
            if native_tools:
                add("user", {"type": "tool_result", "tool_use_id": _call_id(call_id), "content": message.content})
            else:
                tag = f"{names.get(call_id, 'tool')}_result"
                add("user", {"type": "text", "text": f"<{tag}>\n{message.content}\n</{tag}>"})
        else:
            if message.content:
                add(message.role, {"type": "text", "text": message.content})
            for call in message.tool_calls:
                names[call.id] = call.name
                arguments = _arguments_of(call.arguments)
                if native_tools:
                    add(
                        "assistant",
                        {"type": "tool_use", "id": _call_id(call.id), "name": call.name, "input": arguments},
                    )
                else:
                    add("assistant", {"type": "text", "text": _intent_json(call.name, arguments)})
    converted = [cast(MessageParam, {"role": role, "content": blocks}) for role, blocks in turns]
    return system, converted


def _arguments_of(arguments: str) -> dict[str, object]:
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {}
    return cast(dict[str, object], value) if isinstance(value, dict) else {}


def _call_id(call_id: str) -> str:
    """A call id in the alphabet Anthropic accepts for `tool_use` ids (letters, digits, `_`, `-`)."""
    return _BAD_ID_CHARS.sub("_", call_id) or "call"


def _status_error(exc: anthropic.APIStatusError, model: str, api_key: str | None) -> ModelHTTPError:
    """The `ModelHTTPError` for an error status the SDK did not (or no longer) retry, with no API key in it."""
    status, body = exc.status_code, hide_keys(exc.body, api_key)
    said: object = exc.api_message  # the body's own message: a list or None from some gateways
    detail = hide_keys(said if isinstance(said, str) and said else exc.message, api_key)
    message = f"{model}: HTTP {status}: {detail}"
    if status in (429, _OVERLOADED):
        return RateLimited(message, status_code=status, body=body, model=model)
    if status == 413 or (status == 400 and _TOO_LONG.search(detail)):
        return ContextWindowExceeded(message, status_code=status, body=body, model=model)
    return ProviderError(message, status_code=status, body=body, model=model)


def _is_message(response: object) -> bool:
    """Whether the SDK's answer is a real Messages response (it builds models leniently)."""
    return (
        isinstance(response, anthropic.types.Message)
        and getattr(response, "type", None) == "message"
        and isinstance(getattr(response, "content", None), list)
        and getattr(response, "usage", None) is not None
    )


def _not_a_message(model: str, status: int, body: object, api_key: str | None) -> ProviderError:
    message = f"{model} answered with a body that is not a Messages response"
    return ProviderError(message, status_code=status, body=hide_keys(body, api_key), model=model)
