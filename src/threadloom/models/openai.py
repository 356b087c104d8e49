"""`OpenAIModel`: OpenAI and any OpenAI-compatible server (vLLM, Ollama, llama.cpp, OpenRouter, Groq, ...).

Built on the official `openai` SDK (extra `openai`). Retries and backoff are the SDK's own
(`max_retries`); what is left when they run out is mapped onto threadloom's `ModelError` tree.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import JsonValue

from ..exceptions import ContextWindowExceeded, ModelError, ModelTimeout, ProviderError, RateLimited, Refused, UserError
from ..messages import Message
from ..parsing._candidates import Finder
from ._reading import read, typed
from ._secrets import hide_keys, redacted_cause
from .base import Completion, ModelRequest, ModelSettings, Strategy, ToolDefinition, Usage

try:
    import openai
except ImportError as _exc:  # pragma: no cover  # the extra is installed wherever the tests run
    raise ImportError("threadloom.models.openai needs the `openai` extra: pip install 'threadloom[openai]'") from _exc

if TYPE_CHECKING:
    import httpx2
    from openai.types.chat import ChatCompletion
    from openai.types.responses import Response

__all__ = ["OpenAIModel"]

Api = Literal["chat", "responses"]
"""Which endpoint to call: Chat Completions (every compatible server) or the Responses API."""

_CONTEXT_MARKERS = ("context_length_exceeded", "context length", "context window", "maximum context", "too many tokens")
_NO_KEY = "no-key"  # self-hosted servers rarely check the key, but the SDK insists on one


class OpenAIModel:
    """A model behind the OpenAI API or any server that speaks it.

    Three strategies turn the model's answer into an intent, all ending in `parsing.parse`:
    `"tools"` offers each intent as a function tool and requires exactly one call; `"json_schema"`
    constrains the answer to the intent union's JSON Schema (structured outputs); `"prompted"`
    relies on the prompt and the tolerant parser, so it works with any model.

    Example:
        ```python
        from threadloom.models.openai import OpenAIModel

        model = OpenAIModel("qwen2.5:7b", base_url="http://127.0.0.1:11434/v1", strategy="json_schema")
        assert model.name == "qwen2.5:7b"
        ```
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        strategy: Strategy = "tools",
        api: Api = "chat",
        tool_choice: Literal["required", "auto"] = "required",
        schema_format: Literal["json_schema", "json_object"] = "json_schema",
        max_tokens_field: Literal["max_tokens", "max_completion_tokens"] | None = None,
        settings: ModelSettings | None = None,
        max_retries: int = 2,
        timeout: float = 60.0,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        """Configure the client; nothing is sent until `complete`.

        Args:
            model: The model name the server knows, e.g. `gpt-4.1-mini`.
            base_url: The server's API root, e.g. `http://127.0.0.1:8000/v1`; OpenAI's when None
                (or `OPENAI_BASE_URL`).
            api_key: The key; `OPENAI_API_KEY` when None. A self-hosted server (`base_url` given)
                needs none.
            strategy: How the model is made to answer with an intent (see the class docstring).
            api: `"chat"` (Chat Completions, which every compatible server has) or `"responses"`.
            tool_choice: With `"tools"`, what the server is told: `"required"` (one call at least) or
                `"auto"` for servers that reject `"required"` (llama-cpp-python's). Either way an
                answer that is not exactly one call becomes a model `error` and is asked again.
            schema_format: With `"json_schema"` on Chat Completions, how the schema is sent: OpenAI's
                `{"type": "json_schema", ...}`, or `"json_object"` for servers that take
                `{"type": "json_object", "schema": ...}` instead (llama-cpp-python's server).
            max_tokens_field: The field `settings["max_tokens"]` is sent as. By default
                `max_completion_tokens` for OpenAI's own API (its reasoning models refuse
                `max_tokens`) and `max_tokens` for other servers, which mostly know only that one.
            settings: Defaults for every request; the agent's `model_settings` override them.
            max_retries: The SDK's retries (with its backoff) for 408, 409, 429, 5xx and lost connections.
            timeout: Seconds to wait for an answer (per attempt) before `ModelTimeout`.
            http_client: An `httpx2.AsyncClient` to send through (proxies, event hooks in tests).

        Raises:
            UserError: A strategy or api that does not exist, or no key for OpenAI's own API.
        """
        if strategy not in ("tools", "json_schema", "prompted"):
            raise UserError(f"strategy must be 'tools', 'json_schema' or 'prompted', got {strategy!r}")
        if schema_format not in ("json_schema", "json_object"):
            raise UserError(f"schema_format must be 'json_schema' or 'json_object', got {schema_format!r}")
        if api not in ("chat", "responses"):
            raise UserError(f"api must be 'chat' or 'responses', got {api!r}")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if api_key is None and base_url is None:
            raise UserError(f"OpenAIModel({model!r}) needs a key: set OPENAI_API_KEY or pass api_key=")
        self.model = model
        self.strategy: Strategy = strategy
        self.api: Api = api
        self.tool_choice = tool_choice
        self.schema_format = schema_format
        self.settings: ModelSettings = ModelSettings(**(settings or {}))
        self.max_tokens_field = max_tokens_field or ("max_tokens" if base_url else "max_completion_tokens")
        self._client = openai.AsyncOpenAI(
            api_key=api_key or _NO_KEY,
            base_url=base_url,
            max_retries=max_retries,
            timeout=timeout,
            http_client=http_client,
        )

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model!r}, strategy={self.strategy!r}, api={self.api!r})"

    @property
    def name(self) -> str:
        """The model name asked for (a completion records the name the server answers with)."""
        return self.model

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.close()

    async def complete(self, request: ModelRequest) -> Completion:
        """Send one request and return the answer as text `parsing.parse` understands.

        A tool call comes back as `{"intent": name, **arguments}`; several calls, none, or prose
        where a call was required come back with `Completion.error` set, for the agent to record
        and ask again.

        Raises:
            RateLimited: 429 after the SDK's retries.
            ContextWindowExceeded: The request is over the model's context window.
            ModelTimeout: No answer within the timeout (after the SDK's retries).
            Refused: The model refused, or a content filter stopped the answer.
            ProviderError: Any other error: 5xx, a bad request, a connection failure, a body that is not JSON
                or not a well-formed answer (status 200).
        """
        if self.strategy == "tools" and not request.tools:
            raise UserError("strategy='tools' needs request.tools (an Agent builds them from its intents)")
        settings = self.settings.copy()
        settings.update(request.settings)
        started = time.perf_counter()
        try:
            if self.api == "chat":
                completion = await self._chat(request, settings)
            else:
                completion = await self._responses(request, settings)
        except openai.OpenAIError as exc:
            failure, cause = _model_error(exc, self.model, self._key), exc
        except json.JSONDecodeError as exc:  # the SDK lets a body that is not JSON through as is
            message = f"{self.model}: the answer is not JSON: {exc}"
            body = hide_keys(exc.doc, self._key)[:500]
            failure, cause = ProviderError(message, status_code=200, body=body, model=self.model), exc
        else:
            latency_ms = (time.perf_counter() - started) * 1000
            return Completion(
                completion.text,
                completion.model,
                usage=completion.usage,
                latency_ms=latency_ms,
                stop_reason=completion.stop_reason,
                strategy=self.strategy,
                error=completion.error,
            )
        # Raised outside the except blocks, so the SDK's exception (which may quote the key and holds
        # the request's Authorization header) is neither the traceback's cause nor its context.
        raise failure from redacted_cause(cause, self._key)

    @property
    def _key(self) -> str | None:
        """The key sent, to hide in errors (None for a self-hosted server's placeholder)."""
        key = self._client.api_key
        return None if key == _NO_KEY else key

    # -- Chat Completions ------------------------------------------------------------------

    async def _chat(self, request: ModelRequest, settings: ModelSettings) -> Completion:
        params: dict[str, Any] = {"model": self.model, "messages": [m.to_dict() for m in request.messages]}
        params.update(_sampling(settings, self.max_tokens_field))
        if self.strategy == "tools":
            params["tools"] = [{"type": "function", "function": _function(t)} for t in request.tools]
            params["tool_choice"] = self.tool_choice
        elif self.strategy == "json_schema":
            if self.schema_format == "json_object":
                params["response_format"] = {"type": "json_object", "schema": dict(request.output_schema)}
            else:
                params["response_format"] = {"type": "json_schema", "json_schema": _json_schema(request)}
        create: Any = self._client.chat.completions.create
        return read(self.model, cast("ChatCompletion", await create(**params)), self._key, self._chat_answer)

    def _chat_answer(self, response: ChatCompletion) -> Completion:
        """The answer as a `Completion`; `read` makes a malformed one a `ProviderError`."""
        if not response.choices:
            raise ProviderError("the server answered with no choices", status_code=200, model=self.model)
        choice = response.choices[0]
        message = choice.message
        if message.refusal:
            raise Refused(f"{self.model} refused: {message.refusal}")
        if choice.finish_reason == "content_filter":
            raise Refused(f"{self.model}'s answer was stopped by the content filter")
        usage = Usage()
        if response.usage is not None:
            details = response.usage.prompt_tokens_details
            cached = (details.cached_tokens or 0) if details is not None else 0
            usage = _usage(response.usage.prompt_tokens, response.usage.completion_tokens, cached)
        text, error = typed(message.content or "", str), None
        if self.strategy == "tools":
            functions = [c.function for c in message.tool_calls or () if c.type == "function"]
            calls = [(typed(f.name, str), typed(f.arguments, str)) for f in functions]
            text, error = _one_call(calls, text)
        model = typed(response.model or self.model, str)
        return Completion(text, model, usage=usage, stop_reason=choice.finish_reason, error=error)

    # -- Responses API ---------------------------------------------------------------------

    async def _responses(self, request: ModelRequest, settings: ModelSettings) -> Completion:
        params: dict[str, Any] = {"model": self.model, "input": _response_input(request.messages)}
        sampling = _sampling(settings, "max_output_tokens")
        sampling.pop("seed", None)  # the Responses API has no seed
        sampling.pop("stop", None)  # nor stop sequences
        params.update(sampling)
        if self.strategy == "tools":
            params["tools"] = [{"type": "function", **_function(t), "strict": False} for t in request.tools]
            params["tool_choice"] = self.tool_choice
            params["parallel_tool_calls"] = False
        elif self.strategy == "json_schema":
            params["text"] = {"format": {"type": "json_schema", **_json_schema(request)}}
        create: Any = self._client.responses.create
        return read(self.model, cast("Response", await create(**params)), self._key, self._responses_answer)

    def _responses_answer(self, response: Response) -> Completion:
        """The answer as a `Completion`; `read` makes a malformed one a `ProviderError`."""
        if response.error is not None:
            raise ProviderError(f"{response.error.code}: {response.error.message}", status_code=200, model=self.model)
        texts: list[str] = []
        calls: list[tuple[str, str]] = []
        for item in response.output:
            if item.type == "function_call":
                calls.append((typed(item.name, str), typed(item.arguments, str)))
            elif item.type == "message":
                for part in item.content:
                    if part.type == "refusal":
                        raise Refused(f"{self.model} refused: {part.refusal}")
                    texts.append(typed(part.text, str))
        incomplete = response.incomplete_details
        stop_reason = (incomplete.reason if incomplete is not None else None) or response.status
        if stop_reason == "content_filter":
            raise Refused(f"{self.model}'s answer was stopped by the content filter")
        usage = Usage()
        if response.usage is not None:
            # Compatible servers may leave the details out: the SDK then gives None, whatever its types say.
            details: Any = getattr(response.usage, "input_tokens_details", None)
            cached = (details.cached_tokens or 0) if details is not None else 0
            usage = _usage(response.usage.input_tokens, response.usage.output_tokens, cached)
        text, error = "".join(texts), None
        if self.strategy == "tools":
            text, error = _one_call(calls, text)
        model = typed(response.model or self.model, str)
        return Completion(text, model, usage=usage, stop_reason=stop_reason, error=error)


def _usage(input_tokens: object, output_tokens: object, cached_tokens: object) -> Usage:
    return Usage(typed(input_tokens, int), typed(output_tokens, int), typed(cached_tokens, int))


def _sampling(settings: ModelSettings, max_tokens_key: str) -> dict[str, Any]:
    """The request's sampling settings under the names the endpoint uses."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "max_tokens":
            out[max_tokens_key] = value
        elif key in ("temperature", "top_p", "seed", "stop", "timeout"):
            out[key] = value
    return out


def _function(tool: ToolDefinition) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)}


def _json_schema(request: ModelRequest) -> dict[str, Any]:
    # Not strict: OpenAI's strict mode wants an object at the root and every field required,
    # and the intent union is an anyOf of objects with optional fields. Servers that constrain
    # decoding (vLLM, llama.cpp's server) follow the schema either way.
    return {"name": "intent", "schema": dict(request.output_schema), "strict": False}


def _one_call(calls: Sequence[tuple[str, str]], prose: str) -> tuple[str, str | None]:
    """Exactly one tool call as intent text; otherwise the answer and what is wrong, for the model."""
    if len(calls) == 1:
        name, arguments = calls[0]
        return _intent_text(name, arguments)
    if calls:
        names = ", ".join(name for name, _ in calls)
        listed = json.dumps([{"intent": n, "arguments": a} for n, a in calls], ensure_ascii=False)
        return listed, f"call exactly one tool per answer; you called {len(calls)}: {names}"
    return prose, "answer with exactly one tool call (one of the offered tools), not with text"


def _intent_text(name: str, arguments: str) -> tuple[str, str | None]:
    """`{"intent": name, **arguments}`, or that with the error for the model when they are not one object.

    Broken JSON is mended as the parser mends answers (within its repair budget), never pasted
    after the name as text: an `intent` key of its own would then rename the call.
    """
    try:
        decoded: object = json.loads(arguments or "{}")
    except (json.JSONDecodeError, RecursionError):
        values: list[JsonValue] = Finder().load(arguments) if arguments.strip() else [{}]
        if len(values) != 1 or not isinstance(values[0], dict):
            unread = f"the arguments of your `{name}` call are not one JSON object; call it again"
            return _dump(name, {"arguments": arguments}), unread
        decoded = values[0]
    return _dump(name, cast(Mapping[str, object], decoded) if isinstance(decoded, dict) else {"value": decoded}), None


def _dump(name: str, arguments: Mapping[str, object]) -> str:
    return json.dumps({"intent": name, **{k: v for k, v in arguments.items() if k != "intent"}}, ensure_ascii=False)


def _response_input(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Chat messages as Responses API input items (tool calls and results become their own items)."""
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            items.append({"type": "function_call_output", "call_id": message.tool_call_id, "output": message.content})
            continue
        if message.content or not message.tool_calls:
            items.append({"role": message.role, "content": message.content})
        for call in message.tool_calls:
            items.append({"type": "function_call", "call_id": call.id, "name": call.name, "arguments": call.arguments})
    return items


def _model_error(exc: openai.OpenAIError, model: str, api_key: str | None) -> ModelError:
    """The SDK's exception (after its retries) as the matching `ModelError`, with no API key in it."""
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeout(f"{model} did not answer in time")
    if isinstance(exc, openai.APIStatusError):
        status, body = exc.status_code, hide_keys(cast(object, exc.body), api_key)
        text = json.dumps(body, default=str).lower() if body is not None else str(exc).lower()
        message = hide_keys(f"{model}: HTTP {status}: {_error_message(exc)}", api_key)
        if status == 429:
            return RateLimited(message, status_code=status, body=body, model=model)
        if status in (400, 413, 422) and any(marker in text for marker in _CONTEXT_MARKERS):
            return ContextWindowExceeded(message, status_code=status, body=body, model=model)
        return ProviderError(message, status_code=status, body=body, model=model)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(hide_keys(f"{model}: cannot connect: {exc}", api_key), status_code=0, model=model)
    # Anything else the SDK raises (a response that fails its validation, ...) is the provider's fault.
    return ProviderError(hide_keys(f"{model}: {type(exc).__name__}: {exc}", api_key), status_code=0, model=model)


def _error_message(exc: openai.APIStatusError) -> str:
    """The provider's own one-line message where the body has one."""
    body = cast(object, exc.body)
    if isinstance(body, dict):
        inner = cast(dict[str, object], body)
        inner = inner.get("error", inner)
        if isinstance(inner, dict):
            message = cast(dict[str, object], inner).get("message")
            if isinstance(message, str):
                return message.splitlines()[0] if message else ""
    return (str(exc).splitlines() or [""])[0]
