"""The `threadloom` command: run workers and look after threads from a shell (extra `cli`).

    threadloom worker --agents examples.deploy_bot:build_agent
    threadloom serve --agents examples.deploy_bot:build_agent
    threadloom threads ls --status waiting_approval
    threadloom threads show TH_ID
    threadloom threads approve TH_ID
    threadloom threads respond TH_ID "use staging"
    threadloom usage --by agent --since 7d
    threadloom keys create ops --scopes read,write,approve
    threadloom eval run examples/deploy_bot_evals.py --baseline examples/evals/deploy_bot.baseline.json

The store comes from `--store` or `THREADLOOM_STORE`, default `sqlite:///threadloom.db`; only
`worker` and `serve` create a store or upgrade its schema: the other commands refuse a database that
holds no threadloom store of this version, and leave it unchanged. Errors are one line on stderr:
exit 1 when the command failed, 2 when it was misused.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from ._app import app, load_agents, say, threads
from ._deciding import approve, cancel, fork, reject, respond, send_event
from ._listing import list_threads
from ._show import render, show
from ._usage import usage
from ._worker import worker

__all__ = ["app", "load_agents", "main"]


app.command()(worker)
app.command()(usage)
for name, command in [
    ("ls", list_threads),
    ("show", show),
    ("render", render),
    ("approve", approve),
    ("reject", reject),
    ("respond", respond),
    ("send-event", send_event),
    ("cancel", cancel),
    ("fork", fork),
]:
    threads.command(name)(command)

# `threadloom keys ...` comes with the `server` extra (its tables live in the server package).
try:
    from ._keys import keys
except ImportError:  # pragma: no cover - the extra is installed wherever the tests run
    pass
else:
    app.add_typer(keys, name="keys")

# `threadloom eval ...` and `threadloom replay` come with the `evals` extra (PyYAML for cases and
# cassettes); without it the rest of the command works as before.
try:
    from ..evals._cli import eval_app, replay
except ImportError:  # pragma: no cover - the extra is installed wherever the tests run
    pass
else:
    app.add_typer(eval_app, name="eval")
    app.command("replay")(replay)

# `threadloom serve` comes with the `server` extra (FastAPI, uvicorn).
try:
    from ._serve import serve
except ImportError:  # pragma: no cover - the extra is installed wherever the tests run
    pass
else:
    app.command()(serve)


def _version(value: bool) -> None:
    if value:
        say("threadloom ", __version__)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """threadloom: run agent workers and look after threads."""


def main() -> None:
    """Entry point of the `threadloom` command."""
    app()
