"""How a server is named until it names itself: its command and script, or its URL; never a secret.

The label reaches the model (in tool errors) and the logs, so it leaves out options, their values,
credentials and query strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ..context import DEFAULT_SECRET_PATTERN

__all__ = ["http_label", "stdio_label"]

_SCRIPTS = (".py", ".js", ".ts", ".mjs", ".cjs")
_PACKAGE_RUNNERS = ("npx", "uvx", "bunx")  # they run a package named among their arguments
# A package's or module's name (`@scope/name@1.2`, `mcp-server-git`, `mcp_server_fetch`): no URL, path or `:`.
_PACKAGE = re.compile(r"(@[a-z0-9][\w.-]*/)?[a-z0-9][\w.-]*(@[\w.^~-]+)?", re.IGNORECASE)
_FLAGS = frozenset({"-y", "--yes", "-q", "--quiet", "--no-install", "--offline", "--isolated", "--no-cache"})
"""The runners' options that take no value: the word after one is no option's value."""


def stdio_label(command: str, args: Sequence[str]) -> str:
    """The label of a server run as `command args`: the program's name and its script or package, if found."""
    program = Path(command).name
    return " ".join(part for part in (program, _script(program, args)) if part)


def http_label(url: str) -> str:
    """The label of a server at `url`: without credentials or a query string, which may carry a key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _script(program: str, args: Sequence[str]) -> str | None:
    """The script or package in a command's arguments; never an option's value, nor any other word.

    A script (`server.py`, `build/index.js`) is taken wherever it stands, and so is the module
    after `python -m`. After `npx`, `uvx`, `bunx` or `pipx run`, the package: the first argument
    shaped like a package's name that no option may own (one after `-e` or `--registry` may be its
    value; one after `-y` is not). Nothing else is named: a word that is no script may be a key.
    """
    runner = program.lower().removesuffix(".exe").removesuffix(".cmd")
    found = list(_arguments(args))
    if runner == "pipx" and found[:1] == [("run", None)]:
        runner, found = "npx", found[1:]  # `pipx run PACKAGE` runs a package as npx does
    for arg, option in found:
        if Path(arg).suffix in _SCRIPTS:
            return Path(arg).name or None
        if option == "-m" and runner.startswith("python") and _PACKAGE.fullmatch(arg):
            return arg
    if runner in _PACKAGE_RUNNERS:
        for arg, option in found:
            if (option is None or option in _FLAGS) and _PACKAGE.fullmatch(arg):
                return arg.rsplit("/", 1)[-1]  # `@scope/server-github` is named `server-github`
    return None


def _arguments(args: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """Each argument that is no option and may be named, with the option just before it (None if none).

    Left out: the value after a secret-named option (`--token VALUE`), and anything holding `=`
    or spaces (`API_KEY=...`, a header).
    """
    option: str | None = None
    for arg in args:
        before, option = option, None
        if arg.startswith("-"):
            option = arg if "=" not in arg else None
        elif before is not None and DEFAULT_SECRET_PATTERN.search(before) is not None:
            continue
        elif "=" not in arg and not any(c.isspace() for c in arg):
            yield arg, before
