"""`threadloom worker`: a worker process, saying what it does through stdlib logging."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer

from ..exceptions import ThreadloomError
from ..runtime import Runtime
from ..store import DEFAULT_URL
from ..worker import Worker
from ._app import AgentsOption, StoreOption, above_zero, at_least_one, fail, hide_password, load_agents, say, shown

__all__ = ["JsonFormatter", "configure_logging", "worker"]

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What every LogRecord has; anything else on a record came from `extra=` and goes into its JSON line.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a record: `at`, `level`, `logger`, `message`, the fields passed as `extra=`, and `error`."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_"))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(
    verbosity: int, log_format: Literal["text", "json"], loggers: Sequence[str] = ("threadloom",)
) -> None:
    """Send these loggers to stderr: INFO, DEBUG with `-v`, WARNING with `-q`, ERROR with `-qq`.

    Only this process's command does this: the library itself never configures logging.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(_TEXT_FORMAT))
    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(max(verbosity, -2), logging.DEBUG)
    for name in loggers:
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


def worker(
    agents: AgentsOption,
    store: StoreOption = DEFAULT_URL,
    concurrency: Annotated[int, typer.Option(help="Threads run at once.")] = 4,
    lease_seconds: Annotated[float, typer.Option(help="Lease length; renewed every third of it.")] = 30,
    poll_seconds: Annotated[
        float, typer.Option(help="Look for work this often when nothing announces any (PostgreSQL announces it).")
    ] = 0.5,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log lines (DEBUG).")] = 0,
    quiet: Annotated[int, typer.Option("--quiet", "-q", count=True, help="Fewer: warnings only; -qq errors.")] = 0,
    log_format: Annotated[
        str, typer.Option("--log-format", help="`text` lines, or `json`: one JSON object a line.")
    ] = "text",
) -> None:
    """Run a worker until SIGTERM / Ctrl-C: claim runnable threads and run their agents; logs go to stderr.

    On SIGTERM it stops claiming, ends each run after its current step and releases the threads.
    This is the command that may create a SQLite store.
    """
    if log_format not in ("text", "json"):
        raise typer.BadParameter("must be text or json", param_hint="--log-format")
    at_least_one(concurrency, "--concurrency")
    above_zero(lease_seconds, "--lease-seconds")
    above_zero(poll_seconds, "--poll-seconds")
    configure_logging(verbose - quiet, "json" if log_format == "json" else "text")
    log = logging.getLogger("threadloom.cli")
    runtime = Runtime(store=store, agents=load_agents(agents))
    names = ", ".join(runtime.agents)
    where = shown(store)

    def ready() -> None:
        # The banner comes once SIGTERM is handled, so a supervisor that waits for it can stop us cleanly.
        say("worker on ", where, " with agents ", names, "; Ctrl-C to stop")
        log.info("worker started on %s with agents %s", where, names, extra={"store": where, "agents": names})

    try:
        Worker(runtime, concurrency=concurrency, lease_seconds=lease_seconds, poll_seconds=poll_seconds).serve(
            on_ready=ready
        )
    except ThreadloomError as exc:  # the store cannot be opened: say so in one line
        fail(hide_password(store, str(exc)))
    log.info("worker stopped: every run ended and its thread released", extra={"store": where})
