"""`threadloom keys create | ls | revoke`: the API keys `threadloom serve` accepts, kept in the store's database.

A key's secret is printed once, by `create`, and never stored: the server keeps only its SHA-256
and its name, which every decision made with the key records (`by: key:NAME`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import JsonValue
from rich.table import Table
from rich.text import Text

from ..exceptions import ThreadloomError, UserError
from ..server._keys import SCOPES, Scope, digest, new_secret, parse_scopes
from ..server.tables import StoredKey, Tables, stored_tables, writable_tables
from ..server.tables.memory import MemoryTables
from ..store import DEFAULT_URL
from ._app import StoreOption, command_for, console, existing_store, fail, hide_password, say, write_json

__all__ = ["create_key", "keys", "list_keys", "revoke_key"]

_T = TypeVar("_T")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")

keys = typer.Typer(help="Create, list and revoke the API keys `threadloom serve` accepts.", no_args_is_help=True)


def _with_tables(store: str, work: Callable[[Tables], Awaitable[_T]], *, create: bool = False) -> _T:
    """Run `work` on the store's server tables; a threadloom error ends the command in one line.

    Only `create` makes the tables (a new SQLite file too: it is a server's first command), and
    never in another program's SQLite file nor beside a store of another schema. Otherwise they
    are read as they are, a database that is not threadloom's is refused unchanged, and a store
    without them holds no keys.
    """
    if store == "memory://":
        fail("memory:// keeps nothing once this command ends; use --store sqlite:///path.db or postgresql://", code=2)
    if not create:
        existing_store(store)

    async def main() -> _T:
        # Both refuse, unchanged, a store of another schema and a SQLite file of another program's tables.
        tables = await writable_tables(store) if create else (await stored_tables(store) or MemoryTables())
        try:
            return await work(tables)
        finally:
            await tables.aclose()

    try:
        return asyncio.run(main())
    except UserError as exc:
        fail(hide_password(store, str(exc)), code=2)
    except ThreadloomError as exc:
        fail(hide_password(store, str(exc)))


def _scopes(scopes: frozenset[Scope]) -> list[str]:
    return [scope for scope in SCOPES if scope in scopes]


def _where(store: str) -> str:
    if store.startswith("sqlite:///"):
        return str(Path(store.removeprefix("sqlite:///")).absolute())
    return hide_password(store, store)


def create_key(
    name: Annotated[str, typer.Argument(help="Who holds the key; decisions made with it record `key:NAME`.")],
    scopes: Annotated[str, typer.Option("--scopes", help="What it may do: read, write, approve (comma-separated).")],
    store: StoreOption = DEFAULT_URL,
) -> None:
    """Create a key and print its secret, once: only its SHA-256 is stored."""
    if not _NAME.fullmatch(name):
        fail(f"a key's name is 1-64 letters, digits and _.@- (starting with a letter or digit), not {name!r}", code=2)
    try:
        allowed = parse_scopes(scopes)
    except UserError as exc:
        fail(f"{exc}; scopes are read, write, approve", code=2)
    secret = new_secret()
    key = StoredKey(name, allowed, digest(secret), datetime.now(UTC))

    async def add(tables: Tables) -> bool:
        try:
            await tables.add_key(key)
        except UserError:
            return False
        return True

    if not _with_tables(store, add, create=True):
        fail(
            f"a key named {name!r} exists already; revoke it first ({command_for(store, 'keys', 'revoke', name)})"
            " or pick another name"
        )
    say(secret)  # stdout holds only the secret, for `$(threadloom keys create ...)`
    shown = ", ".join(_scopes(allowed))
    typer.echo(f"created key {name!r} ({shown}) in {_where(store)}; its secret above is shown only once", err=True)


def list_keys(
    store: StoreOption = DEFAULT_URL,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line.")] = False,
) -> None:
    """List the stored keys: names, scopes and when each was created (never their secrets)."""
    found = _with_tables(store, lambda tables: tables.keys())
    if as_json:
        for key in found:
            scopes: list[JsonValue] = [*_scopes(key.scopes)]
            write_json({"name": key.name, "scopes": scopes, "created_at": key.created_at.isoformat()})
        return
    if not found:
        say("no keys stored; create one with: threadloom keys create NAME --scopes read,write,approve")
        return
    table = Table("name", "scopes", "created", box=None, pad_edge=False)
    for key in found:
        table.add_row(
            Text(key.name), Text(", ".join(_scopes(key.scopes))), Text(f"{key.created_at:%Y-%m-%d %H:%M} UTC")
        )
    console.print(table)


def revoke_key(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    store: StoreOption = DEFAULT_URL,
) -> None:
    """Delete a key: servers refuse it within seconds (they re-read the stored keys every 5 s)."""
    if not _with_tables(store, lambda tables: tables.remove_key(name)):
        fail(f"no key named {name!r} in {_where(store)}")
    say(f"revoked key {name!r}")


keys.command("create")(create_key)
keys.command("ls")(list_keys)
keys.command("revoke")(revoke_key)
