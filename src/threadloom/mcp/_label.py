"""How a server is named until it names itself: its command and script, or its URL; never a secret.

The label reaches the model (in tool errors) and the logs, so it leaves out options, their values,
credentials and query strings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ..context import DEFAULT_SECRET_PATTERN

__all__ = ["http_label", "stdio_label"]

_SCRIPTS = (".py", ".js", ".ts", ".mjs", ".cjs")
_PACKAGE_RUNNERS = ("npx", "uvx", "bunx")  # the first argument that is no option is the package they run


def stdio_label(command: str, args: Sequence[str]) -> str:
    """The label of a server run as `command args`: the program's name and its script or package, if found."""
    program = Path(command).name
    return " ".join(part for part in (program, _script(program, args)) if part)


def http_label(url: str) -> str:
    """The label of a server at `url`: without credentials or a query string, which may carry a key."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _script(program: str, args: Sequence[str]) -> str | None:
    """The script or package in a command's arguments; never an option's value.

    A script (`server.py`, `build/index.js`), the package after `npx`/`uvx`/`pipx run`, or the
    module after `python -m` is taken wherever it stands. Without one, the first argument that no
    option may own: a short flag's argument (`-k s3cr3t`) may be its value, a secret-named long
    option's (`--token s3cr3t`) is.
    """
    runner = program.lower().removesuffix(".exe").removesuffix(".cmd")
    found = list(_arguments(args))
    if runner == "pipx" and found[:1] == [("run", None)]:
        runner, found = "npx", found[1:]  # `pipx run PACKAGE` runs a package as npx does
    for index, (arg, option) in enumerate(found):
        named = Path(arg).suffix in _SCRIPTS or (index == 0 and runner in _PACKAGE_RUNNERS)
        if named or (option == "-m" and runner.startswith("python")):
            return Path(arg).name or None
    unowned = (arg for arg, option in found if option is None or option.startswith("--"))
    return next((Path(arg).name or None for arg in unowned), None)


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
