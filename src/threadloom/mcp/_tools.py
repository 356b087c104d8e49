"""`mcp_tools`: an MCP server's tools as threadloom tools, each with a policy."""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal, get_args

from mcp_types import CallToolResult, ContentBlock, EmbeddedResource, TextContent, TextResourceContents
from mcp_types import Tool as MCPToolDefinition
from pydantic import (
    BaseModel,
    ConfigDict,
    JsonValue,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    create_model,
    model_serializer,
)

from .._result_limit import DEFAULT_MAX_RESULT_CHARS, check_limit
from ..exceptions import UserError
from ..intents import Intent, Policy, Tool, calling, idempotency_key
from ._nulls import keep_given_nulls
from ._schema import ArgumentsBase, SchemaConverter, camel, secret_properties
from ._server import MCPServer

__all__ = ["MCPTool", "mcp_tools", "tool_name"]

log = logging.getLogger("threadloom.mcp")

_PREFIX = re.compile(r"^[a-z][a-z0-9_]*$")
_POLICIES: tuple[str, ...] = get_args(Policy)


class _MCPIntent(Intent):
    """An MCP tool's intent: its fields keep the server's property names (see `ArgumentsBase`)."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True, validate_by_alias=True)

    @model_serializer(mode="wrap")
    def _given_nulls(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> object:
        return keep_given_nulls(self, handler(self), info)  # the thread records a null the model gave


@dataclass(frozen=True, slots=True, eq=False)
class MCPTool(Tool):
    """A threadloom tool whose calls go to an MCP server (made by `mcp_tools`).

    Calling it (or the loop running it) validates the arguments, sends them under the server's
    own names and returns the result: the structured content if the server sent any, else the
    text. A failed call raises `MCPToolError`; a lost server raises `MCPConnectionError`.

    A copy made with `dataclasses.replace` (`replace(tool, server=other)`) calls through its own
    fields: its `server`, under its `mcp_name`. It passes itself to `function` first (the function
    `mcp_tools` made sends by that tool's fields), so a wrapper of `function` passes every argument on.
    """

    _: KW_ONLY
    server: MCPServer
    """The connection its calls go through."""
    mcp_name: str
    """The tool's name on the server (`name` is the snake_case intent name)."""
    definition: MCPToolDefinition
    """The server's listing of the tool: its schemas and annotations, as sent."""
    renames: Mapping[str, str] = field(default_factory=dict[str, str])
    """Field name -> property name, for a property that could keep neither its name nor an alias
    (`intent_` for `intent`, which names the intent itself)."""

    async def invoke(self, arguments: Mapping[str, JsonValue], *, key: str | None = None) -> JsonValue:
        """Validate the recorded `arguments` and send them to the server, under its own names.

        What was left out stays out (the server applies its own default); a null given for a
        property that allows null is sent. The call goes through `function`, as `Tool.invoke`'s
        does, so a wrapper of it (tracing's span) is around the request. The tool passes itself
        first, so a copy sends by its own fields, though `function` was made for the original.

        Args:
            arguments: The call's arguments, as recorded in the thread.
            key: The call's idempotency key, sent in the request's `_meta`.

        Raises:
            pydantic.ValidationError: The arguments do not fit the schema.
            MCPToolError: The tool failed, or the server refused the call.
            MCPConnectionError: The server went away or did not answer in time.
        """
        with calling(key):
            return await self.function(self, **arguments)

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        """Call the tool directly (`await tool(limit=1)`): the keywords are the call's arguments."""
        return self.function(self, *args, **kwargs)

    async def send(self, arguments: Mapping[str, Any], *, key: str | None) -> JsonValue:
        """Validate `arguments` and send them to the server, under its own names (what `function` does)."""
        # Not `Tool.invoke`'s way, which passes every field on and so forgets which ones the call gave.
        wire = self.arguments.model_validate(dict(arguments)).model_dump(mode="json")
        for field_name, prop in self.renames.items():
            if field_name in wire:
                wire[prop] = wire.pop(field_name)
        return result_value(await self.server.call_tool(self.mcp_name, wire, idempotency_key=key))


async def mcp_tools(
    server: MCPServer,
    *,
    policies: Mapping[str, Policy] | None = None,
    default_policy: Policy | None = None,
    prefix: str | None = None,
    include: Collection[str] | None = None,
    max_result_chars: int | None = DEFAULT_MAX_RESULT_CHARS,
) -> list[MCPTool]:
    """List a connected server's tools (every page) and make each a threadloom tool.

    A tool's policy is, in order: `policies[name]` (the MCP name or the intent name), else
    `default_policy`, else `"auto"` for a tool the server marks read-only (`readOnlyHint`) and
    `"approval"` for every other: nothing that may change the world runs without a person's yes
    unless you say so. Read-only and `idempotentHint` tools are `idempotent` (re-run after a crash).

    The annotations are the server's own claims: for a server you do not control, pass
    `default_policy="approval"` and name the tools that may run at once in `policies`.

    Args:
        server: A connected `MCPServer` (inside its `async with`).
        policies: A policy per tool, overriding the annotations.
        default_policy: The policy of every tool not in `policies`, ignoring the annotations.
        prefix: Put before each intent name (`prefix="github"` -> `github_create_issue`), to keep
            the tools of two servers apart.
        include: Only these tools (MCP or intent names); by default, all of them. A small agent
            with a few tools chooses better than one with fifty (factor 10).
        max_result_chars: The longest result of each tool stored, as JSON text; a longer one is an
            error the model reads (see `@tool`). A server's results are third-party input: keep a
            limit. None stores any size.

    Returns:
        The tools, in the server's order, ready for `Agent(tools=...)`.

    Raises:
        UserError: A bad policy, prefix or limit, a name in `policies` or `include` the server does not
            have, or two tools whose intent names collide.
        MCPConnectionError: The server did not answer.
    """
    if prefix is not None and not _PREFIX.match(prefix):
        raise UserError(f"prefix {prefix!r} must be snake_case, like 'github'")
    for policy in (*(policies or {}).values(), *([default_policy] if default_policy else [])):
        if policy not in _POLICIES:
            raise UserError(f"policy must be one of {', '.join(map(repr, _POLICIES))}, got {policy!r}")
    check_limit("mcp_tools", max_result_chars)
    definitions = await server.list_tools()
    names = {d.name: tool_name(d.name, prefix) for d in definitions}
    known = set(names) | set(names.values())
    for label, asked in (("policies", policies or {}), ("include", include or ())):
        unknown = sorted(set(asked) - known)
        if unknown:
            raise UserError(f"{label} names tools {server.name!r} does not have: {unknown}; it has {sorted(names)}")
    wanted = set(include) if include is not None else known
    tools: list[MCPTool] = []
    seen: dict[str, str] = {}
    for definition in definitions:
        name = names[definition.name]
        if definition.name not in wanted and name not in wanted:
            continue
        if name in seen:
            raise UserError(
                f"MCP tools {seen[name]!r} and {definition.name!r} both become {name!r}; pick one with include="
            )
        seen[name] = definition.name
        chosen = (policies or {}).get(definition.name) or (policies or {}).get(name) or default_policy
        tools.append(build_tool(server, definition, name, chosen, max_result_chars=max_result_chars))
    return tools


def tool_name(mcp_name: str, prefix: str | None = None) -> str:
    """The snake_case intent name for an MCP tool name.

    Example:
        ```python
        from threadloom.mcp import tool_name

        assert tool_name("createPullRequest") == "create_pull_request"
        assert tool_name("list-files", prefix="fs") == "fs_list_files"
        assert tool_name("HTTPGet") == "http_get"
        ```
    """
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", mcp_name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)  # HTTPServer -> HTTP_Server
    name = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if prefix:
        name = f"{prefix}_{name}" if name else prefix
    return name if name[:1].isalpha() else f"tool_{name}".rstrip("_")


def build_tool(
    server: MCPServer,
    definition: MCPToolDefinition,
    name: str,
    policy: Policy | None,
    *,
    max_result_chars: int | None = DEFAULT_MAX_RESULT_CHARS,
) -> MCPTool:
    """One listed tool as a threadloom tool named `name`; `mcp_tools` builds each with it."""
    hints = definition.annotations
    read_only = bool(hints and hints.read_only_hint)
    idempotent = read_only or bool(hints and hints.idempotent_hint)
    title = definition.title or (hints.title if hints else None)
    description = inspect.cleandoc(definition.description or title or "")
    doc = description or None
    try:
        arguments, intent, renames = _models(definition, name, doc, loose=False)
    except Exception as exc:  # one odd schema must not cost the agent the server's other tools
        log.warning(
            "each argument of MCP tool %r of %r takes any JSON value: its input schema cannot be converted (%s: %s)",
            definition.name, server.name, type(exc).__name__, str(exc)[:200],
        )  # fmt: skip
        arguments, intent, renames = _models(definition, name, doc, loose=True)

    secrets = secret_properties(definition.input_schema)

    async def call(caller: MCPTool | None = None, /, **kwargs: Any) -> JsonValue:
        """The request, sent by `caller`'s fields; the keywords are the call's arguments.

        The tool passes itself first (`tool(limit=1)`, `invoke`): it may be a copy of `tool` made with
        `dataclasses.replace`, which this function was not made for. Called bare, it is `tool`'s.
        """
        return await (caller or tool).send(kwargs, key=idempotency_key())

    tool = MCPTool(
        function=call,
        name=name,
        description=description,
        arguments=arguments,
        intent=intent,
        policy=policy or ("auto" if read_only else "approval"),
        idempotent=idempotent,
        # Redacted wherever the thread is rendered, like a `SecretStr` argument of a `@tool`; a
        # property renamed for the intent (`intent` -> `intent_`) is recorded under its field name.
        secret_fields=secrets | {field_name for field_name, prop in renames.items() if prop in secrets},
        max_result_chars=max_result_chars,
        server=server,
        mcp_name=definition.name,
        definition=definition,
        renames=renames,
    )
    return tool


def _models(
    definition: MCPToolDefinition, name: str, doc: str | None, *, loose: bool
) -> tuple[type[BaseModel], type[Intent], dict[str, str]]:
    """The tool's arguments model, its intent, and the field names its converter had to rename.

    `loose` makes every property a `JsonValue` field, for a schema the converter failed on.
    """
    converter = SchemaConverter(definition.input_schema, owner=camel(name))
    # `intent` names the intent itself, so a property of that name gets another field name.
    fields = converter.fields(definition.input_schema, reserved=frozenset({"intent"}), loose=loose)
    arguments = create_model(f"{camel(name)}Arguments", __base__=ArgumentsBase, __doc__=doc, **fields)
    fields["intent"] = (Literal[name], name)  # a literal built at run time
    intent = create_model(camel(name), __base__=_MCPIntent, __doc__=doc, **fields)
    return arguments, intent, dict(converter.renames)


def result_value(result: CallToolResult) -> JsonValue:
    """What a call returns to the thread: the structured content, else the text of the content.

    Blocks that are not text (images, audio, binary resources) are described, not inlined: their
    bytes would flood the context window.
    """
    if result.structured_content is not None:
        return result.structured_content
    parts = [_block(block) for block in result.content]
    if all(isinstance(part, str) for part in parts):
        return "\n".join(str(part) for part in parts)
    return parts


def _block(block: ContentBlock) -> JsonValue:
    if isinstance(block, TextContent):
        return block.text
    if isinstance(block, EmbeddedResource):
        if isinstance(block.resource, TextResourceContents):
            return block.resource.text
        return {"type": "resource", "uri": block.resource.uri, "mime_type": block.resource.mime_type}
    if block.type == "resource_link":
        return {"type": "resource_link", "uri": block.uri, "name": block.name}
    return {"type": block.type, "mime_type": block.mime_type, "bytes": len(block.data) * 3 // 4}
