"""Intents: the model's one job is to pick the next step as a typed intent (factors 1, 4, 7).

An intent is one flat JSON object named by its `intent` field:
`{"intent": "deploy_backend", "tag": "v1.2.3", "environment": "production"}`. A tool is a typed
function whose arguments the model fills; `@tool` turns it into an intent model plus the code
that runs it, with a per-tool policy for the loop (factor 8).
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, Union, cast, get_args, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    PydanticSchemaGenerationError,
    PydanticUserError,
    SecretBytes,
    SecretStr,
    TypeAdapter,
    create_model,
)
from pydantic.errors import PydanticInvalidForJsonSchema
from pydantic.fields import FieldInfo

from ._result_limit import DEFAULT_MAX_RESULT_CHARS, check_limit
from ._type_names import type_name
from .exceptions import UserError

__all__ = [
    "BUILTIN_INTENTS",
    "DoneForNow",
    "Intent",
    "Policy",
    "RequestHumanInput",
    "RequestMoreInformation",
    "Tool",
    "WaitUntil",
    "calling",
    "idempotency_key",
    "intent_name",
    "intent_schema",
    "intent_union",
    "tool",
]

Policy = Literal["auto", "approval", "external"]
"""`auto`: run the tool and continue. `approval`: stop before running it until a person decides.
`external`: run it (it starts work elsewhere), then sleep until an outside event brings the outcome."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Intent(BaseModel):
    """Base of every intent. Subclasses declare `intent: Literal["their_name"] = "their_name"`.

    Extra keys the model adds (a "reasoning" field, say) are ignored rather than failing the step.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)


class DoneForNow(Intent):
    """Finish: the work is done, or there is nothing more to do until someone writes again."""

    intent: Literal["done_for_now"] = "done_for_now"
    message: str = Field(description="what to tell the human: the outcome, in a sentence or two")


class RequestMoreInformation(Intent):
    """Ask the human who asked for clarification before going on."""

    intent: Literal["request_more_information"] = "request_more_information"
    message: str = Field(description="the question to ask")


class RequestHumanInput(Intent):
    """Ask a person a question and wait for the answer (factor 7)."""

    intent: Literal["request_human_input"] = "request_human_input"
    question: str = Field(description="the question, in one sentence")
    context: str = Field(default="", description="what the person needs to know to answer")
    urgency: Literal["low", "medium", "high"] = "medium"
    format: Literal["free_text", "yes_no", "multiple_choice"] = "free_text"
    choices: list[str] = Field(default_factory=list, description="the options, for multiple_choice")


class WaitUntil(Intent):
    """Sleep until a time, holding no process, then continue (durable waiting; `Agent(can_wait=True)`)."""

    intent: Literal["wait_until"] = "wait_until"
    until: datetime = Field(description="when to continue, ISO 8601 with a time zone, e.g. 2026-01-05T09:00:00Z")
    reason: str = Field(default="", description="what the wait is for")


BUILTIN_INTENTS: tuple[type[Intent], ...] = (DoneForNow, RequestMoreInformation, RequestHumanInput)
"""The intents every agent understands besides its tools."""


def intent_name(model: type[Intent]) -> str:
    """The `intent` literal an intent model is named by.

    Raises:
        UserError: The model has no `intent: Literal["..."]` field.
    """
    info = model.model_fields.get("intent")
    values = get_args(info.annotation) if info is not None else ()
    if len(values) != 1 or not isinstance(values[0], str):
        raise UserError(f"{model.__name__} needs a field `intent: Literal['some_name'] = 'some_name'`")
    return values[0]


def intent_union(models: Sequence[type[Intent]]) -> Any:
    """One discriminated union over `models`, keyed by their `intent` field (for parsing)."""
    if len(models) == 1:
        return models[0]
    return Annotated[Union[tuple(models)], Discriminator("intent")]  # noqa: UP007 - a runtime-built union


def intent_schema(models: Sequence[type[Intent]]) -> dict[str, Any]:
    """The JSON Schema of `intent_union(models)`, with `intent` required in every member.

    Pydantic leaves it optional (each intent class gives it a default), but the parser picks the
    member by it, so a server or grammar that constrains output to the schema must not let it out.
    """
    schema = TypeAdapter(intent_union(models)).json_schema()
    for member in [*schema.get("$defs", {}).values(), schema]:
        properties = member.get("properties", {})
        if "const" in properties.get("intent", {}):
            member["required"] = ["intent", *(r for r in member.get("required", []) if r != "intent")]
    return schema


ToolFunction = Callable[..., Any]


@dataclass(frozen=True, slots=True, eq=False)
class Tool:
    """A typed function the model can choose, with its intent model and the loop's policy for it.

    Build one with `@tool`; call it like the function it wraps.
    """

    function: ToolFunction
    """The code that does the work; sync functions run in a worker thread."""
    name: str
    """The intent name the model uses, snake_case."""
    description: str
    """What the tool does, from the docstring's first paragraph: the model reads it."""
    arguments: type[BaseModel]
    """The arguments as a pydantic model, built from the signature."""
    intent: type[Intent]
    """The intent model: the arguments plus `intent: Literal[name]`."""
    policy: Policy = "auto"
    """Whether the loop runs it at once or stops for approval first."""
    idempotent: bool = False
    """Safe to run twice with the same arguments (used by crash recovery)."""
    secret_fields: frozenset[str] = field(default_factory=frozenset[str])
    """Keys whose values are `SecretStr`/`SecretBytes` (an argument's name, or a field of a model
    argument): redacted wherever the thread is rendered."""
    max_result_chars: int | None = DEFAULT_MAX_RESULT_CHARS
    """The longest result stored, as JSON text; a longer one is an error the model reads. None: no limit."""

    def __post_init__(self) -> None:
        check_limit(f"tool {self.name!r}", self.max_result_chars)

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped function directly (tests, scripts)."""
        # `self` is positional-only, so a tool may take an argument named `self` (an MCP property can).
        return self.function(*args, **kwargs)

    async def invoke(self, arguments: Mapping[str, JsonValue], *, key: str | None = None) -> Any:
        """Validate `arguments` against the signature and run the function.

        Args:
            arguments: The call's arguments, as recorded in the thread.
            key: The call's idempotency key; the function reads it with `idempotency_key()`.

        Raises:
            pydantic.ValidationError: The arguments do not fit the signature.
        """
        validated = self.arguments.model_validate(dict(arguments))
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        token = _CURRENT_KEY.set(key)  # as `calling` does; inline, since every tool call pays it
        try:
            if inspect.iscoroutinefunction(self.function):
                return await cast(Callable[..., Awaitable[Any]], self.function)(**kwargs)
            return await asyncio.to_thread(self.function, **kwargs)  # copies the context, key included
        finally:
            _CURRENT_KEY.reset(token)


@contextmanager
def calling(key: str | None) -> Generator[None, None, None]:
    """Within it, `idempotency_key()` is `key`: the call a tool's `invoke` runs."""
    token = _CURRENT_KEY.set(key)
    try:
        yield
    finally:
        _CURRENT_KEY.reset(token)


_CURRENT_KEY: ContextVar[str | None] = ContextVar("threadloom_idempotency_key", default=None)


def idempotency_key() -> str | None:
    """The idempotency key of the tool call running now, or None outside a tool call.

    The same call always gets the same key, also when it is run again after a crash, so a tool
    marked `idempotent=True` can pass it to the service it calls (a payment API's
    `Idempotency-Key` header, say) and the service does the work once.
    """
    return _CURRENT_KEY.get()


@overload
def tool(function: ToolFunction, /) -> Tool: ...
@overload
def tool(
    *,
    policy: Policy = "auto",
    name: str | None = None,
    idempotent: bool = False,
    max_result_chars: int | None = DEFAULT_MAX_RESULT_CHARS,
) -> Callable[[ToolFunction], Tool]: ...
def tool(
    function: ToolFunction | None = None,
    /,
    *,
    policy: Policy = "auto",
    name: str | None = None,
    idempotent: bool = False,
    max_result_chars: int | None = DEFAULT_MAX_RESULT_CHARS,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a typed function a tool the model can choose.

    The parameters' type hints become the intent's schema; the docstring's first paragraph is the
    description the model reads, and its `Args:` section describes each parameter.

    Example:
        ```python
        from typing import Literal

        from threadloom import tool


        @tool(policy="approval")
        def deploy_backend(tag: str, environment: Literal["staging", "production"]) -> str:
            '''Deploy a tagged backend build.'''
            return f"deployed {tag} to {environment}"


        assert deploy_backend.name == "deploy_backend" and deploy_backend.policy == "approval"
        ```

    Args:
        function: The function, when used as a bare `@tool`.
        policy: `"auto"` runs it and continues; `"approval"` stops before it runs until approved.
        name: The intent name, if not the function's name.
        idempotent: Running it twice with the same arguments does no harm.
        max_result_chars: The longest result stored, as JSON text (100,000 by default: about 25,000
            tokens); a longer one is an error the model reads. None stores any size.

    Returns:
        A `Tool`, or a decorator that makes one.

    Raises:
        UserError: The function has untyped or variadic parameters, or a bad name, policy or limit.
    """

    def build(fn: ToolFunction) -> Tool:
        return _build_tool(fn, policy=policy, name=name, idempotent=idempotent, max_result_chars=max_result_chars)

    return build(function) if function is not None else build


def _build_tool(
    fn: ToolFunction, *, policy: Policy, name: str | None, idempotent: bool, max_result_chars: int | None
) -> Tool:
    if not callable(fn):
        raise UserError(f"@tool decorates a function, got {type(fn).__name__}")
    tool_name = name or getattr(fn, "__name__", "")
    if not _NAME.match(tool_name):
        raise UserError(f"tool name {tool_name!r} must be snake_case (pass name='...' to @tool)")
    if policy not in ("auto", "approval", "external"):
        raise UserError(f"tool {tool_name!r}: policy must be 'auto', 'approval' or 'external', got {policy!r}")
    description, arg_docs = _read_docstring(inspect.getdoc(fn) or "")
    fields: dict[str, Any] = {}
    secrets: set[str] = set()
    hints = _type_hints(fn, tool_name)
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise UserError(f"tool {tool_name!r}: *args / **kwargs cannot become a schema; name each parameter")
        if param.name not in hints:
            raise UserError(f"tool {tool_name!r}: parameter {param.name!r} needs a type hint")
        if param.name == "intent":
            raise UserError(f"tool {tool_name!r}: 'intent' is reserved for the intent name; rename the parameter")
        hint = hints[param.name]
        _check_schema(tool_name, param.name, hint)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hint, FieldInfo(default=default, description=arg_docs.get(param.name)))
        secrets |= _secret_keys(param.name, hint, set())
    camel = "".join(part.title() for part in tool_name.split("_"))
    arguments = create_model(f"{camel}Arguments", __doc__=description or None, **fields)
    fields["intent"] = (Literal[tool_name], tool_name)  # a literal built at run time
    intent: type[Intent] = create_model(camel, __base__=Intent, __doc__=description or None, **fields)
    return Tool(
        function=fn,
        name=tool_name,
        description=description,
        arguments=arguments,
        intent=intent,
        policy=policy,
        idempotent=idempotent,
        secret_fields=frozenset(secrets),
        max_result_chars=max_result_chars,
    )


def _check_schema(tool_name: str, parameter: str, hint: Any) -> None:
    """Refuse, naming the tool and the parameter, a type the model could not fill as JSON."""
    try:
        TypeAdapter(hint).json_schema()
    except (PydanticSchemaGenerationError, PydanticInvalidForJsonSchema, PydanticUserError) as exc:
        raise UserError(
            f"tool {tool_name!r}: parameter {parameter!r} is typed {type_name(hint)}, which the model cannot "
            "fill as JSON; use str, int, float, bool, a Literal, a list or dict of those, a pydantic model, "
            "a dataclass or a TypedDict"
        ) from exc


def _secret_keys(name: str, hint: Any, seen: set[type]) -> set[str]:
    """The keys under which a value of type `hint`, passed as `name`, holds a secret.

    `name` itself when a secret type appears in the hint (`SecretStr | None`, `list[SecretBytes]`);
    the fields of a pydantic model in it that do, at any depth (`Login.pin: SecretStr`: `pin`).
    """
    if hint in (SecretStr, SecretBytes):
        return {name}
    found: set[str] = set()
    if isinstance(hint, type) and issubclass(hint, BaseModel) and hint not in seen:
        seen.add(hint)  # a model that holds itself (a tree) is walked once
        for field_name, info in hint.model_fields.items():
            for key in {field_name, info.alias or field_name}:
                found |= _secret_keys(key, info.annotation, seen)
    for arg in get_args(hint):
        found |= _secret_keys(name, arg, seen)
    return found


def _type_hints(fn: ToolFunction, tool_name: str) -> dict[str, Any]:
    try:
        return inspect.get_annotations(fn, eval_str=True)
    except Exception as exc:  # a NameError or SyntaxError from a forward reference
        raise UserError(f"tool {tool_name!r}: cannot read its type hints: {exc}") from exc


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Raises|Yields|Example|Examples|Note|Notes):\s*$")
_ARG_LINE = re.compile(r"^\s+(\*{0,2}\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _read_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and the `Args:` descriptions of a Google-style docstring."""
    lines = doc.splitlines()
    description: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()):
            break
        description.append(line.strip())
    args: dict[str, str] = {}
    section = ""
    current = ""
    for line in lines:
        header = _SECTION.match(line.strip())
        if header and not line.startswith(" "):
            section, current = header.group(1), ""
            continue
        if section not in ("Args", "Arguments", "Parameters"):
            continue
        if match := _ARG_LINE.match(line):
            current = match.group(1)
            args[current] = match.group(2).strip()
        elif current and line.strip():
            args[current] = f"{args[current]} {line.strip()}"
    return " ".join(description), args
