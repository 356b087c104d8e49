"""`threadloom serve`: the HTTP API, the answer links, the inbox and a worker in one process (extra `server`)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from ..exceptions import ThreadloomError, UserError
from ..runtime import Runtime
from ..server._serve import INBOX_PATH, address, listen, read_settings, server_config
from ..server._serve import serve as run_server
from ..store import DEFAULT_URL
from ._app import AgentsOption, StoreOption, at_least_one, command_for, fail, hide_password, load_agents, say, shown
from ._worker import configure_logging

__all__ = ["serve"]

_DEFAULT_CONFIG = Path("threadloom.toml")


# typer's help reads docstrings as rich markup, where `:name:` is an emoji code: `:SECRET:` printed
# as a single glyph. The key format below is written so that no colon pair names an emoji.
def serve(
    agents: AgentsOption,
    store: StoreOption = DEFAULT_URL,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on (0: any free one).")] = 8000,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker", help="Run a worker here too; --no-worker: separate `threadloom worker` processes."
        ),
    ] = True,
    concurrency: Annotated[int, typer.Option(help="Threads the worker runs at once.")] = 4,
    webhook: Annotated[
        list[str] | None,
        typer.Option("--webhook", help="A URL told of threads that wait, finish or fail (THREADLOOM_WEBHOOK_SECRET)."),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(envvar="THREADLOOM_PUBLIC_URL", help="The address people reach the server at (answer links)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(envvar="THREADLOOM_CONFIG", help="A TOML file of settings; ./threadloom.toml when there is one."),
    ] = None,
    drain_seconds: Annotated[
        int, typer.Option(help="On SIGTERM, how long requests in flight may take to finish.")
    ] = 30,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log lines (DEBUG).")] = 0,
    quiet: Annotated[
        int, typer.Option("--quiet", "-q", count=True, help="Fewer: no request lines, warnings only; -qq errors.")
    ] = 0,
    log_format: Annotated[
        str, typer.Option("--log-format", help="`text` lines, or `json`: one JSON object a line.")
    ] = "text",
) -> None:
    """Serve the API, the answer links and the inbox, with a worker, until SIGTERM / Ctrl-C.

    API keys: those `threadloom keys create` stored, and THREADLOOM_API_KEYS (entries of a name, a
    secret and scopes, such as ops:tlk_...:read+write, comma-separated); with neither it refuses to start. On SIGTERM it finishes the requests in
    flight, then each run ends after its current step, and it exits 0. Logs go to stderr and never
    show a secret.
    """
    if log_format not in ("text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--log-format")
    if not 0 <= port <= 65535:
        fail(f"--port must be 0 to 65535, got {port}", code=2)
    at_least_one(concurrency, "--concurrency")
    if public_url is not None and not _is_http_url(public_url):
        fail(f"--public-url must be an http(s) URL, got {public_url!r}", code=2)
    configure_logging(verbose - quiet, "json" if log_format == "json" else "text", ("threadloom", "uvicorn"))
    log = logging.getLogger("threadloom.cli")
    path = config if config is not None else (_DEFAULT_CONFIG if _DEFAULT_CONFIG.exists() else None)
    try:
        settings = read_settings(path) if path is not None else None
    except UserError as exc:
        fail(str(exc), code=2)
    runtime = Runtime(store=store, agents=load_agents(agents))
    try:
        sock = listen(host, port)
    except UserError as exc:
        fail(str(exc))
    listening = address(sock)
    base = (public_url or (settings.public_url if settings else None) or listening).rstrip("/")
    where, names = shown(store), ", ".join(runtime.agents)

    def ready() -> None:
        # Printed once SIGTERM is handled: a supervisor (or a test) waiting for it may stop us cleanly.
        runs = f"a worker running {concurrency} at once" if worker else "no worker"
        say("serving on ", listening, " (store ", where, ", agents ", names, ", ", runs, "); Ctrl-C to stop")
        say("  inbox ", base + INBOX_PATH, "   API docs ", base + "/docs")
        log.info("server started on %s", listening, extra={"store": where, "agents": names, "worker": worker})

    async def main() -> None:
        try:
            served = await server_config(
                runtime,
                environ=os.environ,
                settings=settings,
                webhooks=webhook or (),
                public_url=base,
                worker=worker,
                worker_concurrency=concurrency,
                keys_command=command_for(store, "keys", "create", "NAME", "--scopes", "read,write,approve"),
            )
            await runtime.store()  # a store that cannot be opened ends the command here, in one line
        except BaseException:
            await runtime.aclose()
            raise
        await run_server(served, sock, on_ready=ready, drain_seconds=drain_seconds, access_log=verbose - quiet >= 0)

    try:
        asyncio.run(main())
    except UserError as exc:
        fail(hide_password(store, str(exc)), code=2)
    except ThreadloomError as exc:
        fail(hide_password(store, str(exc)))
    finally:
        sock.close()
    log.info("server stopped: every request answered, every run ended after its step", extra={"store": where})


def _is_http_url(url: str) -> bool:
    # What a threadloom.toml's `public_url` must be too: answer links start with it.
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
